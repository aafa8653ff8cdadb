"""Keystore: 0600, prints only the address, the key never in output, logs or errors."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from daemon.cli import app
from wallet.errors import KeystoreError
from wallet.keystore import create_keystore, load_signer

PASSWORD = "correct horse battery staple"


def test_a_new_keystore_is_mode_0600_and_opens_with_its_password(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    address = create_keystore(path, PASSWORD)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    signer = load_signer(path, PASSWORD)
    assert signer.address == address
    assert repr(signer) == f"Signer({address})"


def test_an_existing_keystore_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    create_keystore(path, PASSWORD)
    before = path.read_bytes()
    with pytest.raises(KeystoreError):
        create_keystore(path, PASSWORD)
    assert path.read_bytes() == before


def test_a_wrong_password_says_so_without_the_password(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    create_keystore(path, PASSWORD)
    with pytest.raises(KeystoreError) as err:
        load_signer(path, "hunter2-wrong")
    assert "hunter2" not in str(err.value) and str(path) in str(err.value)


def test_wallet_new_prints_only_the_address_and_never_the_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "agent.json"
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    with caplog.at_level(logging.DEBUG):
        result = CliRunner().invoke(app, ["wallet", "new", "--keystore", str(path), "--password-file", str(pw)])
    assert result.exit_code == 0, result.output
    address = result.output.strip()
    assert address.startswith("0x") and len(address) == 42
    key = Account.decrypt(json.loads(path.read_text()), PASSWORD)
    assert Account.from_key(key).address == address
    secrets = [key.hex(), key.to_0x_hex() if hasattr(key, "to_0x_hex") else key.hex(), PASSWORD]
    seen = result.output + "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    assert not any(s in seen for s in secrets)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
