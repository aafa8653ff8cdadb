"""A local Bluesky PDS (with an in-memory PLC directory) for `selfpub demo`, when the Node peer is installed.

    directory = find_pds()                 # build/node/pds of this checkout, or None
    pds = start_pds(directory, workdir)    # PLC + PDS on free 127.0.0.1 ports, Node 22 from `directory`
    account = pds.create_account("demo.test", password)
    ...
    pds.stop()                             # by PID

The peer (Node 22, @atproto/pds, @did-plc/server and run.mjs) is installed by
`make peers` (tests/peers/setup.sh) into build/node/pds; nothing here installs it.

Errors:
    PdsError        the peer is missing, exited, or did not answer in time (the message says which);
                    retryable None (the demo stops)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PDS_DIR = REPO / "build" / "node" / "pds"
START_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0


class PdsError(RuntimeError):
    """The local PDS could not be found or started."""

    retryable: bool | None = None


def installed(directory: Path) -> bool:
    """True when `directory` holds an installed peer: the marker, Node 22 and the runner."""
    return all((directory / name).exists() for name in (".installed", "node", "run.mjs"))


def find_pds(directory: Path | None = None) -> Path | None:
    """The installed peer in `directory` (default: build/node/pds of this checkout), or None."""
    candidate = Path(directory) if directory is not None else DEFAULT_PDS_DIR
    return candidate.resolve() if installed(candidate) else None


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Account:
    """An account on the local PDS."""

    handle: str
    did: str
    password: str = field(repr=False)


@dataclass
class LocalPds:
    """A running PDS + PLC pair (one Node process)."""

    pid: int
    url: str
    plc_url: str
    log_path: Path
    _proc: subprocess.Popen | None = None

    def create_account(self, handle: str, password: str, email: str | None = None) -> Account:
        """com.atproto.server.createAccount (handles end in .test)."""
        resp = httpx.post(
            f"{self.url}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "password": password, "email": email or f"{handle.split('.')[0]}@example.test"},
            timeout=30,
        )
        resp.raise_for_status()
        return Account(handle=handle, did=resp.json()["did"], password=password)

    def stop(self) -> None:
        """Stop the process by PID: SIGTERM, then SIGKILL after a grace period."""
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if self._proc is not None:
            try:
                self._proc.wait(timeout=STOP_GRACE_SECONDS)
                return
            except subprocess.TimeoutExpired:
                pass
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if self._proc is not None:
            self._proc.wait(timeout=STOP_GRACE_SECONDS)


def start_pds(directory: Path, workdir: Path, *, timeout: float = START_TIMEOUT_SECONDS) -> LocalPds:
    """Start PLC + PDS from the peer in `directory`, data in `workdir`; wait until the PDS answers."""
    directory = Path(directory)
    if not installed(directory):
        raise PdsError(f"no PDS peer installed in {directory}: run `make peers` (tests/peers/setup.sh)")
    workdir.mkdir(parents=True, exist_ok=True)
    plc_port, pds_port = free_port(), free_port()
    log_path = workdir / "pds.log"
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [str(directory / "node"), str(directory / "run.mjs"), str(workdir / "data"), str(plc_port), str(pds_port)],
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "LOG_ENABLED": "false", "NODE_ENV": "development"},
        )
    pds = LocalPds(pid=proc.pid, url=f"http://localhost:{pds_port}", plc_url=f"http://127.0.0.1:{plc_port}",
                   log_path=log_path, _proc=proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PdsError(f"PDS exited with {proc.returncode}: {_tail(log_path)}")
        if _ready(log_path):
            return pds
        time.sleep(0.2)
    pds.stop()
    raise PdsError(f"PDS did not start in {timeout:.0f} s: {_tail(log_path)}")


def _ready(log_path: Path) -> bool:
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"ready"' in line:
            try:
                if json.loads(line).get("ready"):
                    return True
            except ValueError:
                continue
    return False


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-2000:]
