"""`selfpub wallet ...`: thin commands over the wallet, in ledger and embedded modes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from daemon.cli import app


def run(tmp_path: Path, mode: str, *args: str):  # noqa: ANN201
    config = tmp_path / "selfpub.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n[wallet]\nmode = "{mode}"\n')
    return CliRunner().invoke(app, ["-c", str(config), "wallet", *args], env={"SELFPUB_CONFIG": ""})


def test_ledger_mode_commands_say_there_is_no_chain(tmp_path: Path) -> None:
    for command in ("balance", "scan", "settle", "reconcile"):
        result = run(tmp_path, "ledger", command)
        assert result.exit_code == 0, result.output
        assert "ledger mode" in result.output


def test_embedded_mode_scans_settles_dry_and_reconciles(tmp_path: Path) -> None:
    scan = run(tmp_path, "embedded", "scan")
    assert scan.exit_code == 0 and "scanned blocks" in scan.output
    dry = run(tmp_path, "embedded", "settle", "--dry-run")
    assert dry.exit_code == 0 and "nothing to settle" in dry.output
    rec = run(tmp_path, "embedded", "reconcile")
    assert rec.exit_code == 0 and "drift 0.000000" in rec.output
