"""Helpers for the daemon tests: a notify-socket listener and a daemon run as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class NotifyListener:
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self) -> None:
        # AF_UNIX paths are limited to ~108 bytes: pytest's tmp_path can be longer.
        self.dir = tempfile.mkdtemp(prefix="sdn-", dir="/tmp")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        """Read every datagram waiting now."""
        while True:
            try:
                self.messages.append(self.sock.recv(65536).decode())
            except (TimeoutError, BlockingIOError, socket.timeout):
                return self.messages

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30) -> str:
        """The first message (from the start) matching predicate, waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain()
            for m in self.messages:
                if predicate(m):
                    return m
        raise AssertionError(f"no matching notify message in {self.messages!r}")

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify_listener() -> Iterator[NotifyListener]:
    listener = NotifyListener()
    yield listener
    listener.close()


TEST_ONLY_OPTIONS = ("--fake-cycle-seconds", "--fake-cycle-cost", "--fast-seconds")


def daemon_command(config: Path, args: list[str]) -> list[str]:
    """`selfpub run ARGS`, or tests/daemon/run_daemon.py (the same service) when ARGS use a test-only knob."""
    if any(a in TEST_ONLY_OPTIONS for a in args):
        return [sys.executable, "-m", "tests.daemon.run_daemon", "--config", str(config), *args]
    return [sys.executable, "-m", "daemon.cli", "--config", str(config), "run", *args]


class Daemon:
    """`selfpub run` as a child process; stdout (JSON log lines) captured to a file."""

    def __init__(self, config: Path, args: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self.fh = log_path.open("ab")
        self.proc = subprocess.Popen(
            daemon_command(config, args),
            cwd=REPO, env=env, stdout=self.fh, stderr=subprocess.STDOUT,
        )

    def lines(self) -> list[dict]:
        """Every JSON log line so far (other lines ignored)."""
        out = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue
        return out

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, predicate: Callable[[dict], bool], timeout: float = 30) -> dict:
        """The first log record matching predicate."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.lines():
                if predicate(rec):
                    return rec
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no matching log line (exit {self.proc.poll()}):\n{self.text()[-4000:]}")

    def port(self) -> int:
        """The status server's port, from its log line."""
        return int(self.wait_log(lambda r: r.get("msg") == "status server listening")["port"])

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.fh.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.fh.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start daemons; every one still running at the end is killed by its PID."""
    started: list[Daemon] = []

    def start(config: Path, *args: str, env: dict[str, str] | None = None, name: str = "daemon") -> Daemon:
        base = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        base["PYTHONUNBUFFERED"] = "1"
        d = Daemon(config, list(args), {**base, **(env or {})}, tmp_path / f"{name}-{len(started)}.log")
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(10)
        d.fh.close()


def write_config(path: Path, state_dir: Path, extra: str = "") -> Path:
    """A small config: its own state dir, a random HTTP port, ledger wallet."""
    path.write_text(
        f'state_dir = "{state_dir}"\n'
        "[http]\nport = 0\n"
        '[budget]\nmin_balance = "1"\nresume_balance = "2"\n'
        + extra
    )
    return path
