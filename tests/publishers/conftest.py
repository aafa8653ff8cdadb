"""Publisher fixtures: a real local PDS (+ in-memory PLC) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers.pds import Pds, start_pds


@pytest.fixture(scope="session")
def pds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pds]:
    """A PDS on 127.0.0.1 (installed into build/node/pds on first use), stopped by PID."""
    server = start_pds(tmp_path_factory.mktemp("pds"))
    try:
        yield server
    finally:
        server.stop()
