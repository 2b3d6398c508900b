"""The two kinds of failure a user sees, and their exit codes; and a run stopped by a signal."""

import signal

EXIT_PASS = 0
EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class UserError(Exception):
    """Bad config or input: shown as one line (file, key, what to do), exit 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what CI cancellations and timeouts send) or SIGHUP: handled like Ctrl-C, so the
    staging folder is removed and the previous report stays as it was."""


RETRY_SECONDS = 0.05


def raise_signal(signum: int, frame) -> None:
    """A signal handler: the signal becomes an exception (Terminated, or KeyboardInterrupt for
    SIGINT), but not inside a finalizer (`__del__`, e.g. TensorFlow freeing a compiled function),
    where Python prints the exception and drops it and the run would go on as if never stopped:
    there it asks again a moment later, from wherever the run then is."""
    while frame is not None and frame.f_code.co_name != "__del__":
        frame = frame.f_back
    if frame is not None:
        signal.signal(signal.SIGALRM, lambda _alarm, where: raise_signal(signum, where))
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def handle_stop_signals() -> None:
    """SIGTERM and SIGHUP end a run like Ctrl-C does. SIGINT keeps Python's own meaning: handled
    when Python handles it, ignored when the process was started with it ignored."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_signal)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, raise_signal)
