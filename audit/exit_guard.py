"""A signal ends the process, even when TensorFlow holds it.

Ctrl-C and SIGTERM (a cancelled CI job) raise in the main thread, and the CLI then removes its
staging folder and exits 130 / 128 + signal. But Python runs a signal's handler only when the main
thread executes Python code, and TensorFlow can keep it in C++ or swallow the KeyboardInterrupt
there (tensorflow/tensorflow#28786). So the C-level handler also writes the signal's number to a
pipe (`signal.set_wakeup_fd`), and a watchdog thread reading it gives the normal path GRACE
seconds; then it removes this process's staging folders (never during a report swap) and exits
with the same code and message. It needs the GIL: a run seen twice in fresh-clone `make test`
(SIGINT during the layer gallery, still running 120 s later, with this guard in place the second
time) was not ended by it, so its main thread likely held the GIL (README, "Outputs")."""

from __future__ import annotations

import os
import signal
import sys
import threading

GRACE = 20.0  # seconds the normal interruption path gets before the watchdog ends the process


def message(signum: int) -> str:
    if signum == signal.SIGINT:
        return "audit: interrupted; no report was written, the previous one is untouched"
    return f"audit: terminated ({signal.Signals(signum).name}); no report was written, the previous one is untouched"


def exit_code(signum: int) -> int:
    return 130 if signum == signal.SIGINT else 128 + signum


_installed = False


def install(grace: float = GRACE) -> None:
    """Once per process, from the main thread, after the signal handlers are set."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    _installed = True

    def watch():
        from audit.outputs import SWAP_LOCK, remove_own_staging

        while True:
            signum = os.read(read_fd, 1)[0]
            if signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                break
        threading.Event().wait(grace)
        with SWAP_LOCK:  # a report folder being swapped finishes first
            remove_own_staging()
            print(message(signum), file=sys.stderr, flush=True)
            os._exit(exit_code(signum))

    threading.Thread(target=watch, name="audit-exit-guard", daemon=True).start()
