"""SIGTERM and SIGINT for ``orchestrator run``, from its first line to its last.

systemd sends SIGTERM when a unit is stopped or restarted, also while it is still starting. Python's
default is to die (status 143) or raise KeyboardInterrupt at an arbitrary line, so the ``run``
command installs :func:`catch_early` before it imports anything heavy. Until the daemon's event loop
takes over (:func:`orchestrator.daemon.install_stop_signals`, which asks :func:`early_signal`), a
signal is only recorded; the daemon then stops at the next step of its start-up, doing nothing
more. A second signal exits at once, as it does later (every step is safe to abandon).

Deliberately light (the standard library only): it runs before the imports it protects.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_received: list[signal.Signals] = []


def catch_early() -> None:
    """Record SIGTERM/SIGINT instead of dying, until the event loop installs its own handlers."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _record)


def early_signal() -> signal.Signals | None:
    """The stop signal received before the event loop took over, if any."""
    return _received[0] if _received else None


def _record(signum: int, _frame: FrameType | None) -> None:
    if _received:
        os._exit(128 + signum)
    _received.append(signal.Signals(signum))
