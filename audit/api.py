"""The Python API: `audit.run(...)` and `audit.load_config(...)`. The CLI is a thin layer over it.

    import audit
    result = audit.run("audit.yaml", out="reports/candidate", baseline="releases/v1/audit.json")
    result.verdict, result.exit_code, result.findings    # the same data as audit.json
    result.report_dir / "index.html"

Importing `audit` does not import TensorFlow; `run` does, on first call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.config.load import Config
from audit.config.load import load_config as _load_config
from audit.errors import UserError


NO_TENSORFLOW = ("TensorFlow is not installed in this environment; install it with the package: "
                 "pip install 'keras-shortcut-audit[cpu]' (or [gpu]), or bring your own tensorflow 2.16-2.21")


def require_tensorflow() -> None:
    """Import TensorFlow, or say in one line how to install it."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise UserError(NO_TENSORFLOW) from None


@dataclass(frozen=True)
class AuditResult:
    """One audit: `data` is exactly what `audit.json` in `report_dir` holds; the properties
    below are shortcuts into it."""

    data: dict
    report_dir: Path
    history: Path | None = None  # the run-history page, when `run(history=...)` was given
    history_error: str | None = None  # why the history could not be updated (it never changes the verdict)

    @property
    def verdict(self) -> str:
        """`pass`, `warn` or `fail`."""
        return self.data["verdict"]

    @property
    def exit_code(self) -> int:
        """What `audit run` exits with: 0 pass or warn, 1 the gate failed."""
        return self.data["exit_code"]

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def findings(self) -> list[dict]:
        """Checks at the fail or warn level, worst first (each with every statistic)."""
        return self.data["findings"]

    @property
    def checks(self) -> list[dict]:
        """Every class x concept check."""
        return self.data["checks"]

    @property
    def baseline(self) -> dict:
        """The comparison with the baseline (`state` is `none` when none was asked for)."""
        return self.data["baseline"] or {"state": "none"}

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __repr__(self) -> str:
        s = self.data["summary"]
        return (f"AuditResult(verdict={self.verdict!r}, fail={s['fail']}, warn={s['warn']}, pass={s['pass']}, "
                f"allowed={s['allowed']}, report_dir={str(self.report_dir)!r})")


def load_config(path: str | Path, overrides: dict | None = None) -> Config:
    """Read and validate an audit config (YAML). Raises `audit.UserError` naming the file, the key and
    the fix. `overrides` are merged into the YAML before validation, e.g. `{"visualize": {"steps": 32}}`."""
    return _load_config(path, overrides)


def run(config: Config | str | Path, out: str | Path | None = None, *, baseline: str | Path | None = None,
        history: str | Path | None = None, progress: bool = False, log=None) -> AuditResult:
    """Run the whole audit and write its report folder; return its result.

    config:   a `Config` from `load_config`, or the path of a YAML config.
    out:      report folder (default: `report.out` of the config). It is replaced as a whole, so it
              must be new, empty, or an earlier report.
    baseline: the last released model's `audit.json` (default: `gate.baseline` of the config).
    history:  a folder to keep the run history in (`history.json` + `index.html`); default: none.
              Not the report folder nor inside it, nor inside a folder the run reads (UserError).
    progress: show a progress bar while visualizing.
    log:      a callable taking one line of text (stage timings); default: silent.

    A verdict of `fail` is a result, not an exception. Bad config or input raises `UserError`;
    any other exception is an internal error: the report folder is then replaced by an error
    report (`crash.txt`, a JUnit `<error>`), so a stale report never passes for this run."""
    cfg = config if isinstance(config, Config) else load_config(config)
    target = Path(out) if out is not None else cfg.report.out
    baseline = Path(baseline) if baseline is not None else None
    if history is not None:  # before the work: the history's folder must stay apart from the report and inputs
        from audit.config.load import run_inputs
        from audit.report.history import check_history_folder

        check_history_folder(Path(history), target, run_inputs(cfg, baseline), "history")
    require_tensorflow()
    from audit.report import ci
    from audit.flows.run import run_audit

    try:
        _, _, report_dir = run_audit(cfg, out=target, progress=progress, log=log or (lambda *_: None),
                                     baseline=baseline)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:
        try:
            ci.write_crash_report(target, exc)
        except Exception:  # noqa: BLE001 - the crash itself is what must be reported
            pass
        raise
    data = json.loads((report_dir / "audit.json").read_text())  # the single truth, exactly as written
    page = error = None
    if history is not None:
        from audit.report.history import record_run

        try:
            page = record_run(data, report_dir, Path(history))
        except Exception as exc:  # noqa: BLE001 - the history is a convenience: the report and verdict stand
            error = f"{history}: {getattr(exc, 'strerror', None) or exc}"
    return AuditResult(data, Path(report_dir).resolve(), page, error)


__all__ = ["AuditResult", "UserError", "load_config", "require_tensorflow", "run"]
