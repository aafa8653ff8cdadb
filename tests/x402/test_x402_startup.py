"""Paid reads that cannot start (the chain node down, the facilitator's keystore missing) stop `selfpub run` with one
line naming the key and the fix, on stderr and in the JSON log, and exit 1: never a traceback. `selfpub cycle` (which
serves no site) and `config check` (which reaches no chain) meet the same config without one either."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon.test_cycle_gate import stale_wallet, write_config

REPO = Path(__file__).resolve().parents[2]

# config variant -> what the one line must name
CASES = {
    "node down": ("secrets/keystore.json", ("x402.asset", "wallet.rpc_url", "check the node")),
    "facilitator keystore missing": ("secrets/missing.json", ("x402.signer.keystore_file", "does not exist",
                                                              "selfpub wallet new --keystore")),
}


def paid_config(root: Path, keystore: str) -> Path:
    """A daemon config selling reads through the local facilitator, its chain node (wallet.rpc_url) down."""
    secrets = root / "secrets"
    return write_config(root, extra=stale_wallet(root) + '[logging]\nformat = "json"\n[site]\nenabled = true\nport = 0\n'
                        f'[x402]\nenabled = true\n[x402.signer]\nkeystore_file = "{root / keystore}"\n'
                        f'keystore_password_file = "{secrets / "keystore-password"}"\n')


def selfpub(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_refuses_paid_reads_that_cannot_start_in_one_line_without_a_traceback(tmp_path: Path, case: str) -> None:
    keystore, names = CASES[case]
    config = paid_config(tmp_path, keystore)
    run = selfpub(config, "run")
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    said = run.stderr.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("paid reads cannot start: "), run.stderr
    assert all(name in said[0] for name in names), said[0]
    records = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    errors = [r for r in records if r["level"] in ("error", "critical")]
    assert [r["msg"] for r in errors] == ["selfpub run cannot start"], errors
    assert all(name in errors[0]["reason"] for name in names) and "exc" not in errors[0]

    for args in (("cycle",), ("config", "check")):
        other = selfpub(config, *args)
        assert "Traceback" not in other.stdout + other.stderr, (args, other.stdout, other.stderr)
