"""Config: loading, env overrides, secrets, and `selfpub config check` messages."""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from config import ConfigError, Settings, load_settings
from kernel.money import parse_credits
from config.loader import find_config_path
from daemon.cli import app

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "selfpub.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "selfpub.toml"
    path.write_text(text)
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ or {})
    return {p.key: f"{p.what} | {p.fix}" for p in info.value.problems}


def test_example_config_is_valid_and_frozen(tmp_path: Path) -> None:
    settings = load_settings(EXAMPLE, {})
    assert settings.budget.min_balance == 1_000_000
    assert isinstance(settings.budget.min_balance, int)
    with pytest.raises(Exception):
        settings.persona = "x"  # type: ignore[misc]


def _field_names(model: type[BaseModel], prefix: str = "") -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        if name.endswith("_value"):
            continue
        names.add(name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel) and ann.__name__ != "SecretRef":
            names |= _field_names(ann)
    return names


def test_example_config_mentions_every_key() -> None:
    text = EXAMPLE.read_text()
    missing = [n for n in _field_names(Settings) if n not in text]
    assert not missing, f"keys missing from the example config: {missing}"


def test_amounts_are_integers_never_floats(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, 'state_dir = "s"\n[budget]\nmin_balance = 1.25\nresume_balance = "2.000001"\n'), {})
    assert s.budget.min_balance == 1_250_000 and type(s.budget.min_balance) is int
    assert s.budget.resume_balance == 2_000_001
    assert parse_credits(Decimal("0.000001")) == 1
    for bad in (1.5, "1.0000001", "abc", True):
        with pytest.raises(ValueError):
            parse_credits(bad)


def test_environment_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, 'state_dir = "s"\n')
    s = load_settings(path, {"SELFPUB_BUDGET__MIN_BALANCE": "0.5", "SELFPUB_HTTP__PORT": "9999"})
    assert s.budget.min_balance == 500_000
    assert s.http.port == 9999


def test_state_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, 'state_dir = "s"\n'), {})
    assert s.state_dir == tmp_path / "s"
    assert s.database_url == f"sqlite:///{tmp_path / 's' / 'selfpub.db'}"


def test_config_path_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config_path("x.toml", {"SELFPUB_CONFIG": "y.toml"}) == Path("x.toml")
    assert find_config_path(None, {"SELFPUB_CONFIG": "y.toml"}) == Path("y.toml")
    (tmp_path / "selfpub.toml").write_text("")
    assert find_config_path(None, {}) == Path("selfpub.toml")


def test_secret_value_in_toml_is_refused_with_how_to_move_it(tmp_path: Path) -> None:
    found = problems_of(write(tmp_path, '[publishers.devto]\napi_key = "sk-live-123"\n'))
    msg = found["publishers.devto.api_key"]
    assert "api_key_file" in msg and "api_key_env" in msg and "CREDENTIALS_DIRECTORY" in msg
    assert "sk-live-123" not in str(found)


def test_secret_from_file_and_env(tmp_path: Path) -> None:
    secret = tmp_path / "devto"
    secret.write_text("k-123\n")
    secret.chmod(0o600)
    text = f'state_dir = "s"\n[publishers.devto]\nenabled = true\napi_key_file = "{secret}"\n'
    s = load_settings(write(tmp_path, text), {})
    assert s.publishers.devto.api_key_value.get_secret_value() == "k-123"
    assert "k-123" not in repr(s) and "k-123" not in s.model_dump_json()
    text = 'state_dir = "s"\n[publishers.bluesky]\nenabled = true\nhandle = "a.test"\napp_password_env = "BSKY_PW"\n'
    s = load_settings(write(tmp_path, text), {"BSKY_PW": "pw"})
    assert s.publishers.bluesky.app_password_value.get_secret_value() == "pw"


def test_credentials_directory_resolves_relative_secret_files(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "devto").write_text("k")
    (creds / "devto").chmod(0o600)
    text = 'state_dir = "s"\n[publishers.devto]\nenabled = true\napi_key_file = "devto"\n'
    s = load_settings(write(tmp_path, text), {"CREDENTIALS_DIRECTORY": str(creds)})
    assert s.publishers.devto.api_key_value.get_secret_value() == "k"


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    secret = tmp_path / "open-secret"
    secret.write_text("k")
    secret.chmod(0o644)
    text = f"""
state_dir = "s"
[budgt]
x = 1
[budget]
min_balance = "5"
resume_balance = "2"
daily_cap = "abc"
[agents.writer]
model = "gpt-9"
max_tokns = 5
max_tokens = "many"
[publishers.devto]
enabled = true
api_key_file = "{secret}"
[publishers.bluesky]
enabled = true
handle = "a.test"
app_password_file = "{tmp_path / 'missing'}"
"""
    found = problems_of(write(tmp_path, text))
    assert "did you mean `budget`" in found["budgt"]
    assert "did you mean `max_tokens`" in found["agents.writer.max_tokns"]
    assert "whole number" in found["agents.writer.max_tokens"]
    assert "not a number" in found["budget.daily_cap"]
    assert "resume_balance" in found["budget.min_balance"]
    assert 'prices."gpt-9"' in found["prices.gpt-9"]


def test_secret_file_problems(tmp_path: Path) -> None:
    secret = tmp_path / "open-secret"
    secret.write_text("k")
    secret.chmod(0o644)
    text = f"""
state_dir = "s"
[publishers.devto]
enabled = true
api_key_file = "{secret}"
[publishers.bluesky]
enabled = true
handle = "a.test"
app_password_file = "{tmp_path / 'missing'}"
"""
    found = problems_of(write(tmp_path, text))
    assert "chmod 600" in found["publishers.devto.api_key_file"]
    assert "cannot read" in found["publishers.bluesky.app_password_file"]


def test_wrong_type_and_unknown_enum(tmp_path: Path) -> None:
    found = problems_of(write(tmp_path, '[wallet]\nmode = "bitcoin"\n[http]\nport = "eighty"\n'))
    assert "wallet.mode" in found and "http.port" in found


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    found = problems_of(write(tmp_path, "[budget\n"))
    assert any("not valid TOML" in v for v in found.values())


def test_a_config_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "selfpub.toml"
    path.write_bytes(b'persona = "caf\xe9"\n')  # Latin-1
    found = problems_of(path)
    assert list(found.values()) == ["not UTF-8 text (byte 14) | save the file as UTF-8"]


runner = CliRunner()


def test_cli_config_check_exit_codes(tmp_path: Path) -> None:
    good = write(tmp_path, 'state_dir = "s"\n')
    result = runner.invoke(app, ["--config", str(good), "config", "check"])
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[budget]\nmin_balanse = "1"\n')
    result = runner.invoke(app, ["--config", str(bad), "config", "check"])
    assert result.exit_code == 1
    assert "min_balance" in result.output


def test_init_writes_example_and_state_dir(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    written = (tmp_path / "site" / "selfpub.toml").read_text()
    assert tomllib.loads(written)["budget"]["min_balance"] == "1"
    assert (tmp_path / "site" / "state").is_dir()
    again = runner.invoke(app, ["init", str(tmp_path / "site")])
    assert again.exit_code == 1 and "--force" in again.output


def test_version_prints_the_installed_version_without_a_config() -> None:
    """`selfpub --version` needs no config file and says the version the package was installed as (issue 14.6)."""
    from importlib.metadata import version

    from typer.testing import CliRunner

    from daemon.cli import app

    result = CliRunner().invoke(app, ["--version"], env={"SELFPUB_CONFIG": "/nonexistent/selfpub.toml"})
    assert result.exit_code == 0 and result.stdout.strip() == f"selfpub {version('selfpub')}"
