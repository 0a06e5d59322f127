"""systemd's notification protocol (``sd_notify``), with the standard library only.

Under ``Type=notify`` systemd hands the service a Unix datagram socket in ``NOTIFY_SOCKET``; the
daemon says ``READY=1`` once it is doing work, ``WATCHDOG=1`` while its loop keeps moving, and
``STOPPING=1`` when a graceful stop begins. Without the variable (a terminal, a container) every
call is a no-op, so the daemon never needs to know how it was started. A name starting with ``@``
is a Linux abstract-namespace socket: the ``@`` stands for a leading NUL byte.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Sends notifications to the socket named at construction, if any.

    A failed send is logged and otherwise ignored: systemd going away must not stop the daemon.
    """

    def __init__(self, address: str | None, watchdog_interval: float | None = None) -> None:
        self._address: str | None = None
        if address:
            self._address = "\0" + address[1:] if address.startswith("@") else address
        #: Seconds between watchdog pings, or None when systemd runs no watchdog for us.
        self.watchdog_interval = watchdog_interval if self._address else None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` ask for (inactive when unset)."""
        environ = os.environ if environ is None else environ
        return cls(environ.get("NOTIFY_SOCKET"), watchdog_interval(environ))

    @property
    def enabled(self) -> bool:
        """Whether a service manager is listening."""
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields as one datagram; true when it was delivered."""
        if self._address is None:
            return False
        message = "\n".join(fields).encode()
        try:
            # Non-blocking: a service manager that stopped reading must not freeze the event loop;
            # a full queue drops this message, and the next ping is sent on time.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
                sock.connect(self._address)
                sock.sendall(message)
        except OSError as exc:
            log.warning("sd_notify_failed", error=str(exc), message=fields[0] if fields else "")
            return False
        return True

    def ready(self, status: str = "") -> bool:
        """The daemon is up: systemd considers the start finished."""
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        """The daemon is alive and making progress; resets ``WatchdogSec=``."""
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        """A graceful stop has begun."""
        return self.send("STOPPING=1", "STATUS=stopping")


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings: half of ``WATCHDOG_USEC``, as sd_watchdog_enabled(3) advises.

    None when no watchdog is asked for, or when it is meant for another process (``WATCHDOG_PID``).
    """
    environ = os.environ if environ is None else environ
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000
