"""Start and stop a real local Bluesky PDS (with an in-memory PLC) for tests.

    pds = start_pds(workdir)          # installs the peer if missing, picks free ports
    account = pds.create_account("alice.test", "alice-password")
    ...
    pds.stop()                        # by PID

The peer lives in build/node/pds (tests/peers/setup.sh or tests/peers/pds/install.sh);
starting and stopping it is daemon.demo.localpds (the demo uses it too).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from daemon.demo import localpds
from daemon.demo.localpds import Account, free_port  # noqa: F401 - part of this module's API
from daemon.demo.localpds import LocalPds as Pds

REPO = Path(__file__).resolve().parents[2]
PEER_SRC = REPO / "tests" / "peers" / "pds"
PEER_DIR = REPO / "build" / "node" / "pds"
START_TIMEOUT = localpds.START_TIMEOUT_SECONDS


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


def start_pds(workdir: Path) -> Pds:
    """Start PLC + PDS on free loopback ports; wait until the PDS answers."""
    ensure_installed()
    return localpds.start_pds(PEER_DIR, workdir, timeout=START_TIMEOUT)
