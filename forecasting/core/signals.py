"""Stop signals as exceptions: SIGTERM is handled like Ctrl-C (SIGINT).

``kill PID`` (what schedulers, ``timeout`` and container runtimes send) would otherwise end the
process at once, skipping every ``finally``/``except`` that removes temporary files or keeps an
interrupted run resumable. Inside :func:`stop_signals_raise` both SIGINT and SIGTERM raise
:class:`Interrupted` (a ``KeyboardInterrupt``, so all existing interruption handling applies) and
the command line exits with ``128 + signal`` (130 for SIGINT, 143 for SIGTERM), as shells do.

:func:`deferred` holds a stop signal back during a few system calls that must happen together
(a run directory's final rename): the signal is raised when the block ends.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_state: dict[str, Any] = {"defer": 0, "pending": None}


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT or SIGTERM) received while :func:`stop_signals_raise` was active.

    Attributes:
        signum: the signal number.
    """

    def __init__(self, signum: int, *args: Any):
        super().__init__(*args)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """``128 + signum``: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + int(self.signum)


def _handler(signum: int, frame: Any) -> None:  # noqa: ARG001 - signal handler signature
    if _state["defer"]:
        _state["pending"] = signum  # raised when the deferred block ends
        return
    raise Interrupted(signum)


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM raise :class:`Interrupted`; the previous handlers come back after.

    Outside the main thread (where Python cannot set handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold a stop signal back until the block ends (then raise it), so a few steps finish together.

    Only signals handled by :func:`stop_signals_raise` can be held back; elsewhere (e.g. a library
    caller with Python's default Ctrl-C handler) the block runs unprotected, as before.
    """
    _state["defer"] += 1
    try:
        yield
    finally:
        _state["defer"] -= 1
        pending, _state["pending"] = _state["pending"], None
        if pending is not None and not _state["defer"]:
            raise Interrupted(pending)
        if pending is not None:  # nested: the outermost block raises it
            _state["pending"] = pending
