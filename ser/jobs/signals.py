"""Signals while a job back-end waits for its jobs (local processes or a Slurm array).

Under `signals_raise()` SIGINT raises KeyboardInterrupt and SIGTERM/SIGHUP raise Terminated in the
main thread, once only, so that the caller can kill (or scancel) its jobs without that cleanup
being interrupted in turn.
"""
import contextlib
import signal
import threading


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM/SIGHUP, so that the running jobs get killed/cancelled."""

    def __init__(self, signum):
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def signals_raise():
    """While the jobs run (main thread only): SIGTERM/SIGHUP raise Terminated, SIGINT raises
    KeyboardInterrupt, once only. A signal that was ignored (nohup, a background job of a
    script) stays ignored; the previous handlers are restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = []

    def handler(signum, frame):
        if raised:
            return
        raised.append(signum)
        raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)

    old = {}
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(s) is not signal.SIG_IGN:
            old[s] = signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
