"""The two kinds of failure a user sees, and their exit codes."""

EXIT_PASS = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class UserError(Exception):
    """Bad config or input: shown as one line (file, key, what to do), exit 2."""
