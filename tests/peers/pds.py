"""Start and stop a real local Bluesky PDS (with an in-memory PLC) for tests.

    pds = start_pds(workdir)          # installs the peer if missing, picks free ports
    account = pds.create_account("alice.test", "alice-password")
    ...
    pds.stop()                        # by PID

The peer lives in build/node/pds (tests/peers/setup.sh or tests/peers/pds/install.sh).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
PEER_SRC = REPO / "tests" / "peers" / "pds"
PEER_DIR = REPO / "build" / "node" / "pds"
START_TIMEOUT = 60.0


def installed() -> bool:
    """True when the PDS peer and its Node 22 are in build/node/pds."""
    return (PEER_DIR / ".installed").exists() and (PEER_DIR / "node").exists()


def ensure_installed() -> None:
    """Install the PDS peer (npm: Node 22, @atproto/pds, @did-plc/server) when missing."""
    if not installed():
        PEER_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(PEER_SRC / "install.sh"), str(PEER_DIR)], check=True)
    # keep the runner in step with the source tree without a reinstall
    (PEER_DIR / "run.mjs").write_bytes((PEER_SRC / "run.mjs").read_bytes())


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Account:
    handle: str
    did: str
    password: str


@dataclass
class Pds:
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
                self._proc.wait(timeout=10)
                return
            except subprocess.TimeoutExpired:
                pass
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if self._proc is not None:
            self._proc.wait(timeout=10)


def start_pds(workdir: Path) -> Pds:
    """Start PLC + PDS on free loopback ports; wait until the PDS answers."""
    ensure_installed()
    workdir.mkdir(parents=True, exist_ok=True)
    plc_port, pds_port = free_port(), free_port()
    log_path = workdir / "pds.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [str(PEER_DIR / "node"), str(PEER_DIR / "run.mjs"), str(workdir / "data"), str(plc_port), str(pds_port)],
        cwd=PEER_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LOG_ENABLED": "false", "NODE_ENV": "development"},
    )
    log.close()
    pds = Pds(pid=proc.pid, url=f"http://localhost:{pds_port}", plc_url=f"http://127.0.0.1:{plc_port}", log_path=log_path, _proc=proc)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"PDS exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"ready"' in line and json.loads(line).get("ready"):
                return pds
        time.sleep(0.2)
    pds.stop()
    raise RuntimeError(f"PDS did not start in {START_TIMEOUT}s: {log_path.read_text()[-2000:]}")
