"""The demo finds the Node PDS peer where `make peers` installs it: <repo>/build/node/pds."""

from __future__ import annotations

from pathlib import Path

from daemon.demo.localpds import DEFAULT_PDS_DIR

REPO = Path(__file__).resolve().parents[2]


def test_default_pds_dir_is_the_one_make_peers_fills() -> None:
    # The demo moved into daemon/demo/ once and kept looking one folder too shallow (daemon/build/node/pds),
    # so `selfpub demo` without --pds-dir skipped Bluesky on a machine that had the peer.
    assert DEFAULT_PDS_DIR == REPO / "build" / "node" / "pds"
    assert (REPO / "tests" / "peers" / "pds" / "package.json").is_file()  # the peer that setup.sh installs there
