"""sd_notify(3) over $NOTIFY_SOCKET with the socket module: READY, STATUS, WATCHDOG, STOPPING, RELOADING.

Without $NOTIFY_SOCKET (not run by systemd) every call is a no-op. Send
errors are logged once and swallowed: systemd integration never stops the loop.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends state lines to the service manager's notification socket."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        self.address = _address(environ.get("NOTIFY_SOCKET", ""))
        self.watchdog_usec = _watchdog_usec(environ)
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when a notification socket was given."""
        return self.address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings: half of WATCHDOG_USEC, or None when no watchdog."""
        if not self.watchdog_usec:
            return None
        return self.watchdog_usec / 2 / 1_000_000

    def send(self, *lines: str) -> bool:
        """Send KEY=VALUE lines in one datagram; False when not sent."""
        if self.address is None:
            return False
        payload = "\n".join(lines).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(payload)
            return True
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify the service manager", extra={"error": type(exc).__name__})
                self._warned = True
            return False

    def ready(self, status: str | None = None) -> bool:
        """READY=1 (and a STATUS line)."""
        return self.send("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        """STATUS=<one line>."""
        return self.send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """WATCHDOG=1: the loop is alive."""
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """STOPPING=1."""
        return self.send("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def reloading(self) -> bool:
        """RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload expects."""
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace
    if value.startswith("/"):
        return value
    return None  # vsock and other forms are not used by selfpub


def _watchdog_usec(environ: Mapping[str, str]) -> int | None:
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None  # the watchdog is meant for another process
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec if usec > 0 else None
