"""`config check` on the keystores in use: the facilitator's (x402.signer.keystore_file) and the wallet's when
x402.spend signs with it; missing or unreadable is refused with the key and the fix, and a relative name
resolves in the credentials folder for the check and for the daemon alike."""

from __future__ import annotations

from pathlib import Path

from config import load_settings
from tests.test_config_check import assert_clean_refusal, cli, write_config

TOKEN = "0x" + "c0" * 20
PAYEE = "0x" + "be" * 20
WALLET = "0x" + "ab" * 20


def secret(path: Path, text: str = "pw") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def paid_reads(signer: str, password: str) -> str:
    """Paid reads through the local facilitator, whose keystore is `signer`."""
    return ('[wallet]\nmode = "evm"\nrpc_url = "http://127.0.0.1:1"\nchain_id = 31337\n'
            f'token_address = "{TOKEN}"\naddress = "{WALLET}"\nkeystore_file = "{signer}"\n'
            f'keystore_password_file = "{password}"\n'
            f'[x402]\nenabled = true\n[x402.signer]\nkeystore_file = "{signer}"\nkeystore_password_file = "{password}"\n')


def spending(keystore: str, password: str) -> str:
    """Paying for inference with the wallet's keystore."""
    return (f'[wallet]\nkeystore_file = "{keystore}"\nkeystore_password_file = "{password}"\n'
            f'[x402.spend]\nenabled = true\nnetwork = "eip155:8453"\nasset = "{TOKEN}"\npayees = ["{PAYEE}"]\n'
            'daily_cap = "5"\n')


def test_a_missing_facilitator_keystore_is_refused_with_the_key_and_the_fix(tmp_path: Path) -> None:
    password = secret(tmp_path / "pw")
    missing = tmp_path / "x402-facilitator.keystore"
    result, output = cli("--config", str(write_config(tmp_path / "site", paid_reads(str(missing), str(password)))),
                         "config", "check")
    assert_clean_refusal(result, output)
    assert f"x402.signer.keystore_file: {missing} does not exist" in output, output
    assert f"selfpub wallet new --keystore {missing}" in output


def test_an_unreadable_facilitator_keystore_is_refused(tmp_path: Path) -> None:
    password = secret(tmp_path / "pw")
    folder = tmp_path / "keystore.json"
    folder.mkdir()  # a folder where the file should be: unreadable as a file, even by root
    result, output = cli("--config", str(write_config(tmp_path / "site", paid_reads(str(folder), str(password)))),
                         "config", "check")
    assert_clean_refusal(result, output)
    assert f"x402.signer.keystore_file: cannot read {folder}" in output and "readable by the selfpub user" in output


def test_a_missing_wallet_keystore_is_refused_when_spend_signs_with_it(tmp_path: Path) -> None:
    password = secret(tmp_path / "pw")
    missing = tmp_path / "wallet.json"
    path = write_config(tmp_path / "site", spending(str(missing), str(password)))
    result, output = cli("--config", str(path), "config", "check")
    assert_clean_refusal(result, output)
    assert f"wallet.keystore_file: {missing} does not exist" in output, output

    # unused (spend off, ledger wallet): nothing opens it, nothing to refuse
    path.write_text(path.read_text().replace("enabled = true", "enabled = false"))
    result, output = cli("--config", str(path), "config", "check")
    assert result.exit_code == 0, output


def test_relative_keystore_names_resolve_in_the_credentials_folder(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    secret(creds / "signer.json", "{}")
    secret(creds / "pw")
    path = write_config(tmp_path / "site", paid_reads("signer.json", "pw"))
    result, output = cli("--credentials", str(creds), "--config", str(path), "config", "check")
    assert result.exit_code == 0, output
    assert f"x402.signer.keystore_file: {creds / 'signer.json'}" in output
    # the daemon opens the file the check saw
    settings = load_settings(path, {"CREDENTIALS_DIRECTORY": str(creds)})
    assert settings.x402.signer.keystore_file == creds / "signer.json"
    assert settings.wallet.keystore_file == creds / "signer.json"

    (creds / "signer.json").unlink()
    result, output = cli("--credentials", str(creds), "--config", str(path), "config", "check")
    assert_clean_refusal(result, output)
    assert f"x402.signer.keystore_file: {creds / 'signer.json'} does not exist" in output, output
    assert f"wallet.keystore_file: {creds / 'signer.json'} does not exist" in output
