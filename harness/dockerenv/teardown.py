"""Make teardown run however the process ends short of SIGKILL.

``with``/``finally`` covers exceptions and Ctrl-C; this adds interpreter exit
(``atexit``) and SIGTERM/SIGHUP, which by default kill Python without running
any ``finally``: the handler turns them into `SystemExit`, so the stack unwinds
through the context managers as it does for Ctrl-C. SIGKILL cannot be caught;
``redcap-drill docker sweep`` removes what such a run left behind.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)

_lock = threading.Lock()
_armed_count = 0
_previous: dict[int, object] = {}


class TeardownGuard:
    """Calls ``stop`` at interpreter exit unless disarmed first; turns SIGTERM/SIGHUP into SystemExit."""

    def __init__(self, stop: Callable[[], None]) -> None:
        self._stop = stop
        self._armed = False

    def arm(self) -> TeardownGuard:
        global _armed_count
        if self._armed:
            return self
        atexit.register(self._at_exit)
        self._armed = True
        with _lock:
            _armed_count += 1
            if _armed_count == 1:
                _install_handlers()
        return self

    def disarm(self) -> None:
        global _armed_count
        if not self._armed:
            return
        self._armed = False
        atexit.unregister(self._at_exit)
        with _lock:
            _armed_count -= 1
            if _armed_count == 0:
                _restore_handlers()

    def _at_exit(self) -> None:
        if not self._armed:
            return
        self.disarm()
        try:
            self._stop()
        except Exception:  # noqa: BLE001 - nothing can be raised to anyone at exit; say it instead
            log.exception("teardown at exit failed; run `redcap-drill docker sweep`")


def _install_handlers() -> None:
    # Signal handlers can only be set from the main thread; elsewhere atexit must do.
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in SIGNALS:
        current = signal.getsignal(signum)
        # Respect a handler somebody else installed (pytest-timeout, a supervisor, ...).
        if current in (signal.SIG_DFL, None):
            _previous[signum] = current
            signal.signal(signum, _exit_on_signal)


def _restore_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, previous in list(_previous.items()):
        if signal.getsignal(signum) is _exit_on_signal:
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        del _previous[signum]


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
