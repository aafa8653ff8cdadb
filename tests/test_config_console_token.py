"""http.console_token: a SecretRef like the others (a file, relative names in $CREDENTIALS_DIRECTORY, or an env
variable), never a value in the TOML; unset, the console is read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.loader import ConfigError, load_settings
from daemon.redact import secret_values

TOKEN = "console-token-4Jt8wQ2mZr9pLx"


def _data(tmp_path: Path, **http: object) -> dict:
    return {"state_dir": str(tmp_path / "state"), "http": http}


def test_unset_means_read_only(tmp_path: Path) -> None:
    s = load_settings(data=_data(tmp_path), environ={})
    assert s.http.console_token is None and s.http.console_token_value is None


def test_a_relative_file_resolves_in_the_credentials_directory(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "console-token").write_text(TOKEN + "\n")
    (creds / "console-token").chmod(0o600)
    s = load_settings(data=_data(tmp_path, console_token_file="console-token"),
                      environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert s.http.console_token_value.get_secret_value() == TOKEN
    assert TOKEN in secret_values(s)  # redacted wherever it might show up
    assert TOKEN not in s.model_dump_json()


def test_from_an_environment_variable(tmp_path: Path) -> None:
    s = load_settings(data=_data(tmp_path, console_token_env="SELFPUB_TEST_CONSOLE"), environ={"SELFPUB_TEST_CONSOLE": TOKEN})
    assert s.http.console_token_value.get_secret_value() == TOKEN


def test_a_missing_file_or_a_value_in_the_toml_is_refused_with_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        load_settings(data=_data(tmp_path, console_token_file="nope"), environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert "http.console_token_file" in str(missing.value)
    with pytest.raises(ConfigError) as inline:
        load_settings(data=_data(tmp_path, console_token=TOKEN), environ={})
    assert "http.console_token" in str(inline.value) and TOKEN not in str(inline.value)
