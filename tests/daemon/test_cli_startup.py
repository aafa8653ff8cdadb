"""Issue 15 part 3: the CLI starts fast because it imports only what the command in hand needs.

`selfpub --help` lists every command from daemon.cli.COMMANDS (text) and imports no command module,
so none of SQLAlchemy, pydantic, web3, httpx, openai or the rooms; a command imports its own module
only; the help line of each command is its own (a stale line in COMMANDS fails here); a
read-only command on a database at head never loads Alembic, and `ledger report` and `drafts list`
on a SQLite file at head not even SQLAlchemy (an old database is still migrated, a newer one still
refused), and from the second run on, with the settings read from the snapshot the last full load
kept (config/snapshot.py), not pydantic either, with output byte for byte the same. Each runs in a
fresh interpreter, since the test process itself has imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from daemon.cli import COMMANDS, app, load_command

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("sqlalchemy", "pydantic", "web3", "httpx", "openai", "llama_cpp", "alembic", "sqlmodel")
ROOMS = ("config", "ledger", "wallet", "publishers", "agents")

# Runs the CLI in this interpreter, then prints the top-level packages and the daemon modules it imported.
_PROBE = """
import json, sys
sys.argv = ["selfpub", *json.loads(sys.argv[1])]
from daemon.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
names = sorted(sys.modules)
loader = sys.modules.get("pydantic.plugin._loader")
print(json.dumps({"code": code, "top": sorted({n.split(".")[0] for n in names}),
                  "daemon": [n for n in names if n.startswith("daemon.")],
                  "plugins_scanned": getattr(loader, "_plugins", None) is not None,
                  "orm": "sqlalchemy.orm" in sys.modules}))
"""


def imports_of(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict:
    """Run `selfpub ARGS` in a fresh interpreter; what it imported and its exit code."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_imports_no_library_and_no_room(tmp_path: Path) -> None:
    seen = imports_of(["--help"], tmp_path)
    assert seen["code"] == 0
    assert [m for m in HEAVY + ROOMS if m in seen["top"]] == []
    assert not [m for m in seen["daemon"] if m.startswith("daemon.commands.")]
    assert "click" not in seen["top"]  # typer carries its own click: a second one is 17 ms for nothing


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for name, (_module, help_line) in COMMANDS.items():
        assert f" {name} " in result.output
        assert help_line[:24] in result.output  # rich wraps the rest to the terminal


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_help_line_is_the_commands_own(name: str) -> None:
    """COMMANDS' text is what the command itself would show, so --help can print it without importing."""
    command = load_command(name)
    assert command.name == name
    own = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
    assert COMMANDS[name][1] == own


def test_a_command_imports_its_own_module_only(tmp_path: Path) -> None:
    seen = imports_of(["ledger", "--help"], tmp_path)
    assert seen["code"] == 0
    commands = {m for m in seen["daemon"] if m.startswith("daemon.commands.")}
    assert commands == {"daemon.commands.ledger_cmd"}
    assert [m for m in HEAVY if m in seen["top"] and m not in ("pydantic",)] == []


def test_read_only_commands_on_a_database_at_head_load_no_alembic(tmp_path: Path) -> None:
    """The first command migrates; the next ones read the version rows once and never import Alembic."""
    init = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert init.exit_code == 0, init.output
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SELFPUB_CONFIG": str(tmp_path / "selfpub.toml")}
    first = imports_of(["ledger", "report", "--format", "json"], tmp_path, env)
    assert first["code"] == 0 and "alembic" in first["top"]  # a new database: migrated
    for args in (["ledger", "report", "--format", "json"], ["drafts", "list"], ["config", "check"]):
        seen = imports_of(args, tmp_path, env)
        assert seen["code"] == 0, args
        assert "alembic" not in seen["top"], args
    seen = imports_of(["config", "check"], tmp_path, env)
    assert "sqlalchemy" not in seen["top"]  # checking the config opens no database
    assert "pydantic" in seen["top"] and not seen["plugins_scanned"]  # no scan of every distribution's entry points


def _initialised(tmp_path: Path) -> dict[str, str]:
    """`selfpub init` in tmp_path; the environment that runs the CLI on its config."""
    init = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert init.exit_code == 0, init.output
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SELFPUB_CONFIG": str(tmp_path / "selfpub.toml")}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`selfpub ARGS` in a fresh interpreter (its output, not its imports)."""
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


READ_ONLY = (["ledger", "report"], ["ledger", "report", "--format", "json"], ["ledger", "report", "--csv"],
             ["drafts", "list"], ["drafts", "list", "--all"])


def test_ledger_report_and_drafts_list_on_sqlite_at_head_import_no_sqlalchemy(tmp_path: Path) -> None:
    """Issue 15.3: on a SQLite file at head the report (ledger reads, the outbox through publishers.delivered)
    and the task list (agents.task_rows) run on the stdlib sqlite3 (kernel.dbapi): no SQLAlchemy, Alembic or
    SQLModel, ~0.25 s of their start."""
    env = _initialised(tmp_path)
    first = imports_of(["ledger", "report", "--format", "json"], tmp_path, env)  # a new database: migrated
    assert first["code"] == 0 and {"sqlalchemy", "alembic"} <= set(first["top"])
    for args in READ_ONLY:
        seen = imports_of(args, tmp_path, env)
        assert seen["code"] == 0, args
        assert [m for m in ("sqlalchemy", "alembic", "sqlmodel") if m in seen["top"]] == [], args


def test_read_only_commands_read_the_settings_snapshot_and_import_no_pydantic(tmp_path: Path) -> None:
    """Issue 15.3: a full load keeps the validated settings; the next `ledger report` and `drafts list` read them
    without pydantic (typer < 0.29 builds no pydantic adapter either), and print exactly what a full load does."""
    env = _initialised(tmp_path)
    assert _run(["ledger", "deposit", "2.5"], tmp_path, env).returncode == 0
    no_cache = {**env, "XDG_CACHE_HOME": str(tmp_path / "a-file")}  # nowhere to keep it: every load is full
    (tmp_path / "a-file").write_text("")
    for args in READ_ONLY:
        full = _run(args, tmp_path, no_cache)
        assert full.returncode == 0, full.stderr
        assert "pydantic" in imports_of(args, tmp_path, no_cache)["top"]
        assert "pydantic" not in imports_of(args, tmp_path, env)["top"], args  # kept by an earlier run
        kept = _run(args, tmp_path, env)
        assert kept.returncode == 0, kept.stderr
        if "--format" in args:
            now = {"generated_at": None, "until": None}  # the times of the run
            assert {**json.loads(kept.stdout), **now} == {**json.loads(full.stdout), **now}
        else:
            assert kept.stdout == full.stdout, args
    assert list((tmp_path / ".cache" / "selfpub").glob("settings-*.json"))


def test_a_config_edited_after_its_snapshot_is_loaded_in_full(tmp_path: Path) -> None:
    """The snapshot is keyed by the file's bytes: an edit is seen at once, an error reported as ever (exit 1, no traceback)."""
    env = _initialised(tmp_path)
    config = Path(env["SELFPUB_CONFIG"])
    assert _run(["ledger", "report"], tmp_path, env).returncode == 0
    assert "pydantic" not in imports_of(["drafts", "list"], tmp_path, env)["top"]
    config.write_text(config.read_text().replace("interval_minutes = 120", "interval_minutes = 0"))
    for args in (["ledger", "report"], ["drafts", "list"]):
        out = _run(args, tmp_path, env)
        assert out.returncode == 1, (args, out.stdout)
        assert "schedule.interval_minutes" in out.stderr and "Traceback" not in out.stderr
    config.write_text(config.read_text().replace("interval_minutes = 0", "interval_minutes = 60"))
    for hours in (24, 48, 24):  # an override is part of the key as much as the file
        report = _run(["ledger", "report", "--format", "json"], tmp_path,
                      {**env, "SELFPUB_SUSTAIN__WINDOW_HOURS": str(hours)} if hours != 24 else env)
        assert report.returncode == 0 and json.loads(report.stdout)["sustain"]["window_hours"] == hours


def _downgrade(url: str, package: str, revision: str) -> None:
    """Take one room's tables back to an older revision: the database an older selfpub left."""
    from alembic import command
    from alembic.config import Config

    from kernel.db import make_engine
    from kernel.versions import History

    history, engine = History.of(package), make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(history.script_location))
    cfg.attributes.update(connection_engine=engine, version_table=history.version_table, configure_logger=False)
    command.downgrade(cfg, revision)
    engine.dispose()


@pytest.mark.parametrize("args", [["ledger", "report", "--format", "json"], ["drafts", "list"]])
def test_a_read_only_command_on_an_old_database_migrates_it(tmp_path: Path, args: list[str]) -> None:
    """A schema behind the code is upgraded as before (SQLAlchemy and Alembic), its data kept; the next run is plain."""
    from kernel.db import make_engine
    from daemon.state import migrations

    env = _initialised(tmp_path)
    assert _run(["ledger", "deposit", "2.5"], tmp_path, env).returncode == 0
    url = f"sqlite:///{tmp_path / 'state' / 'selfpub.db'}"
    _downgrade(url, "ledger", "0002")  # ledger_reservation loses sent_at (0003)
    engine = make_engine(url)
    assert [h.version_table for h in migrations().behind(engine)] == ["alembic_version_ledger"]
    seen = imports_of(args, tmp_path, env)
    assert seen["code"] == 0
    assert {"sqlalchemy", "alembic"} <= set(seen["top"])
    assert migrations().behind(engine) == []  # at head again
    engine.dispose()
    assert "sqlalchemy" not in imports_of(args, tmp_path, env)["top"]
    report = _run(["ledger", "report", "--format", "json"], tmp_path, env)
    assert report.returncode == 0 and json.loads(report.stdout)["balance"] == 2_500_000


def test_a_database_newer_than_the_code_is_refused_as_before(tmp_path: Path) -> None:
    """A version row this code has no file for is not "at head": the command takes SQLAlchemy's path, where
    Alembic refuses the revision, as every command did before the plain path."""
    import sqlite3

    env = _initialised(tmp_path)
    assert _run(["ledger", "report"], tmp_path, env).returncode == 0  # migrated
    with sqlite3.connect(tmp_path / "state" / "selfpub.db") as conn:
        conn.execute("UPDATE alembic_version_daemon SET version_num = 'd9999'")
    for args in (["ledger", "report"], ["drafts", "list"], ["ledger", "export", "--format", "hledger"]):
        out = _run(args, tmp_path, env)
        assert out.returncode != 0, args
        assert "d9999" in out.stderr, (args, out.stderr[-2000:])


def test_a_plain_database_that_cannot_be_opened_is_one_line_as_on_sqlalchemys_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stdlib sqlite3's OperationalError is a start-up error like SQLAlchemy's: the message, exit 1, no traceback."""
    import sqlite3

    env = _initialised(tmp_path)
    config = ["--config", env["SELFPUB_CONFIG"]]
    assert CliRunner().invoke(app, [*config, "ledger", "report"]).exit_code == 0  # migrated: next opens are plain

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr("kernel.dbapi.sqlite3.connect", refuse)
    for args in (["ledger", "report"], ["drafts", "list"]):
        result = CliRunner().invoke(app, [*config, *args])
        assert result.exit_code == 1, (args, result.output)
        assert not isinstance(result.exception, sqlite3.Error), args  # explained, not raised
        assert "cannot open the database" in result.output and "unable to open database file" in result.output
        assert "fix: check database.url" in result.output
