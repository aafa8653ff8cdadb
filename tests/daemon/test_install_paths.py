"""Issue 14.4, the paths a service install relies on (config/dirs.py, `selfpub init --system`, --credentials).

    state_dir unset or relative under systemd      -> $STATE_DIRECTORY (the first of a colon list)
    a relative credential name                     -> $CREDENTIALS_DIRECTORY or `selfpub --credentials DIR`;
                                                      with neither, the error says how
    read-only commands                             -> no publisher, LLM or wallet credential needed
    `config check`                                 -> says where each folder and credential resolved
    `init --system` (the default under /etc)       -> a config the unit can run: nothing to write next to it
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import ConfigError, load_settings
from config.dirs import ServiceDirs, cache_environment, first_path
from daemon.cli import app
from daemon.commands.config_cmd import _is_system_dir

runner = CliRunner()
SYSTEMD_VARS = ("STATE_DIRECTORY", "CACHE_DIRECTORY", "LOGS_DIRECTORY", "CREDENTIALS_DIRECTORY", "SELFPUB_CONFIG")
# A config naming credentials relatively, as a service config does, with both publishers on.
PUBLISHING = """
[publishers.devto]
enabled = true
api_key_file = "devto_api_key"
[publishers.bluesky]
enabled = true
handle = "agent.test"
app_password_file = "bluesky_app_password"
"""


def cli(*args: str, **env: str):  # noqa: ANN201 - click's Result
    """`selfpub ARGS` in-process, with none of systemd's folder variables but those given."""
    clean: dict[str, str | None] = dict.fromkeys(SYSTEMD_VARS)
    clean.update({"COLUMNS": "250", **env})
    return runner.invoke(app, list(args), env=clean)


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "selfpub.toml"
    path.write_text(text)
    return path


def secret(folder: Path, name: str, value: str = "s3cret-value") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(value)
    path.chmod(0o600)
    return path


def test_first_path_of_a_systemd_colon_list() -> None:
    assert first_path("/var/lib/selfpub:/var/lib/other") == Path("/var/lib/selfpub")
    assert first_path("") is None and first_path(None) is None
    dirs = ServiceDirs.from_environ({"STATE_DIRECTORY": "/s", "CACHE_DIRECTORY": "/c", "LOGS_DIRECTORY": "/l",
                                     "CREDENTIALS_DIRECTORY": "/run/credentials/selfpub.service"})
    assert dirs == ServiceDirs(Path("/s"), Path("/c"), Path("/l"), Path("/run/credentials/selfpub.service"))


def test_state_dir_unset_or_relative_resolves_in_state_directory(tmp_path: Path) -> None:
    config = tmp_path / "etc"
    unit = {"STATE_DIRECTORY": f"{tmp_path}/var/lib/selfpub:{tmp_path}/second"}
    assert load_settings(write(config, ""), unit).state_dir == tmp_path / "var/lib/selfpub"
    assert load_settings(write(config, 'state_dir = "state"'), unit).state_dir == tmp_path / "var/lib/selfpub/state"
    assert load_settings(write(config, f'state_dir = "{tmp_path}/abs"'), unit).state_dir == tmp_path / "abs"
    # Outside a unit, as before: relative to the config file's folder, unset is /var/lib/selfpub.
    assert load_settings(write(config, 'state_dir = "state"'), {}).state_dir == config / "state"
    assert load_settings(write(config, ""), {}).state_dir == Path("/var/lib/selfpub")


def test_relative_credential_without_a_folder_says_to_pass_credentials(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no file of that name here either
    path = write(tmp_path / "etc", 'state_dir = "s"\n' + PUBLISHING)
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    problems = {p.key: f"{p.what} | {p.fix}" for p in info.value.problems}
    assert set(problems) == {"publishers.devto.api_key_file", "publishers.bluesky.app_password_file"}
    for text in problems.values():
        assert "--credentials DIR" in text and "CREDENTIALS_DIRECTORY" in text
    creds = tmp_path / "creds"
    secret(creds, "devto_api_key", "k-1")
    secret(creds, "bluesky_app_password", "pw-1")
    settings = load_settings(path, {"CREDENTIALS_DIRECTORY": f"{creds}:/elsewhere"})
    assert settings.publishers.devto.api_key_value.get_secret_value() == "k-1"


def test_read_only_commands_need_no_publisher_secrets(tmp_path: Path) -> None:
    path = write(tmp_path / "etc", f'state_dir = "{tmp_path / "state"}"\n' + PUBLISHING)
    for args in (("ledger", "report"), ("drafts", "list"), ("llm", "calls"), ("config", "show"), ("config", "check")):
        result = cli("--config", str(path), *args)
        assert result.exit_code == 0, (args, result.output)
    assert cli("--version").exit_code == 0 and cli("--help").exit_code == 0
    # A command that publishes does need them, and says how to hand them over.
    result = cli("--config", str(path), "cycle")
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "publishers.devto.api_key_file" in out and "--credentials DIR" in out
    assert "Traceback" not in out


def test_credentials_option_resolves_relative_names(tmp_path: Path) -> None:
    path = write(tmp_path / "etc", f'state_dir = "{tmp_path / "state"}"\n' + PUBLISHING)
    creds = tmp_path / "creds"
    secret(creds, "devto_api_key")
    result = cli("--config", str(path), "--credentials", str(creds), "config", "check")
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out  # the Bluesky password is not there
    assert f"{creds}/bluesky_app_password" in out and "No such file" in out
    assert "systemd-creds encrypt --name=bluesky_app_password - /etc/credstore.encrypted/bluesky_app_password" in out
    secret(creds, "bluesky_app_password")
    result = cli("--config", str(path), "--credentials", str(creds), "config", "check")
    out = " ".join(result.output.split())
    assert result.exit_code == 0, out
    assert f"publishers.devto.api_key: {creds}/devto_api_key" in out
    assert "s3cret-value" not in out


def test_config_check_says_where_each_folder_and_credential_resolved(tmp_path: Path) -> None:
    path = write(tmp_path / "etc", 'state_dir = "data"\n' + PUBLISHING)
    creds = tmp_path / "run/credentials/selfpub.service"
    secret(creds, "devto_api_key")
    secret(creds, "bluesky_app_password")
    result = cli("--config", str(path), "config", "check",
                 STATE_DIRECTORY=str(tmp_path / "var/lib/selfpub"), CACHE_DIRECTORY=str(tmp_path / "cache"),
                 LOGS_DIRECTORY=str(tmp_path / "log"), CREDENTIALS_DIRECTORY=str(creds))
    out = result.output
    assert result.exit_code == 0, out
    assert f"state_dir    {tmp_path}/var/lib/selfpub/data (state_dir relative to $STATE_DIRECTORY)" in out
    assert f"cache        {tmp_path}/cache ($CACHE_DIRECTORY" in out
    assert f"$LOGS_DIRECTORY {tmp_path}/log is not used" in out
    assert f"publishers.bluesky.app_password: {creds}/bluesky_app_password ($CREDENTIALS_DIRECTORY" in out
    # Outside the unit the same names cannot be checked: said, not refused.
    result = cli("--config", str(path), "config", "check")
    assert result.exit_code == 0, result.output
    assert "devto_api_key: a credential name, not checked here" in " ".join(result.output.split())


def test_init_system_writes_a_config_the_unit_can_run(tmp_path: Path) -> None:
    etc = tmp_path / "etc/selfpub"
    result = cli("init", str(etc), "--system")
    assert result.exit_code == 0, result.output
    text = (etc / "selfpub.toml").read_text()
    assert "state_dir" not in tomllib.loads(text)  # left to $STATE_DIRECTORY
    assert sorted(p.name for p in etc.iterdir()) == ["selfpub.toml"]  # no state folder next to the config
    # ProtectSystem=strict: the config folder is read-only to the service; only $STATE_DIRECTORY is written.
    etc.chmod(0o555)
    try:
        state = tmp_path / "var/lib/selfpub"
        state.mkdir(parents=True)
        result = cli("--config", str(etc / "selfpub.toml"), "config", "check", STATE_DIRECTORY=str(state))
        assert result.exit_code == 0, result.output
        assert f"state_dir    {state} ($STATE_DIRECTORY, state_dir unset)" in result.output
    finally:
        etc.chmod(0o755)
    # A user config keeps its state next to it, as before.
    user = tmp_path / "site"
    assert cli("init", str(user), "--user").exit_code == 0
    assert tomllib.loads((user / "selfpub.toml").read_text())["state_dir"] == "state"
    assert (user / "state").is_dir()


def test_init_defaults_to_system_for_a_folder_under_etc() -> None:
    assert _is_system_dir(Path("/etc/selfpub")) and _is_system_dir(Path("/etc"))
    assert not _is_system_dir(Path("/etcetera/selfpub")) and not _is_system_dir(Path("/home/me/selfpub"))


def test_caches_go_to_cache_directory() -> None:
    assert cache_environment({"CACHE_DIRECTORY": "/var/cache/selfpub"}) == {"MPLCONFIGDIR": "/var/cache/selfpub/matplotlib"}
    assert cache_environment({"CACHE_DIRECTORY": "/c", "MPLCONFIGDIR": "/mine"}) == {}
    assert cache_environment({}) == {}
