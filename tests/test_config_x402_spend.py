"""`config check` on [x402.spend]: paying for inference enabled with nothing the policy could let through is refused."""

from __future__ import annotations

from pathlib import Path

from tests.test_config_check import assert_clean_refusal, cli, write_config

TOKEN = "0x" + "c0" * 20
PAYEE = "0x" + "be" * 20


def test_enabled_with_nothing_set_names_every_missing_key(tmp_path: Path) -> None:
    path = write_config(tmp_path / "site", "[x402.spend]\nenabled = true\n")
    result, output = cli("--config", str(path), "config", "check")
    assert_clean_refusal(result, output)
    for key in ("x402.spend.enabled:", "x402.spend.network:", "x402.spend.asset:", "x402.spend.payees:",
                "x402.spend.daily_cap:"):
        assert key in output, output
    assert "wallet.keystore_file" in output and "every payment would be refused" in output


def test_enabled_and_complete_passes(tmp_path: Path) -> None:
    keystore = tmp_path / "wallet.json"
    keystore.write_text("{}")
    password = tmp_path / "pw"
    password.write_text("pw")
    password.chmod(0o600)
    toml = (f'[wallet]\nkeystore_file = "{keystore}"\nkeystore_password_file = "{password}"\n'
            f'[x402.spend]\nenabled = true\nnetwork = "eip155:8453"\nasset = "{TOKEN}"\npayees = ["{PAYEE}"]\n'
            'daily_cap = "5"\n')
    result, output = cli("--config", str(write_config(tmp_path / "site", toml)), "config", "check")
    assert result.exit_code == 0 and "x402.spend" not in output, output
