"""Issue 14 part 3: `selfpub config check` refuses, up front, what would break later.

Every bad value the issue names goes through the real CLI (typer's CliRunner): exit 1, the key,
what is wrong, how to fix it, and no traceback. Then the good configs (the example, `selfpub init`)
still pass, a Hypothesis property holds the cron check to APScheduler's own verdict, environment
overrides are named by their variable, and start-up errors (no config, a database that cannot be
opened) print one clear message instead of a traceback.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from typer.testing import CliRunner

from config import ConfigError, Settings, load_settings
from config.checks import check_credits
from daemon.cli import app

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "selfpub.example.toml"
UNREACHABLE_PG = "postgresql+psycopg://selfpub@127.0.0.1:1/selfpub"  # port 1: nothing listens there

runner = CliRunner()


@dataclass(frozen=True)
class Bad:
    name: str
    toml: str  # added to a good config (may set state_dir itself)
    key: str  # the key the message must name
    says: tuple[str, ...]  # what is wrong and how to fix it: every phrase must appear
    hidden: str = ""  # must NOT appear (a secret)


PRICE = '[prices."smollm2-135m-instruct"]\ninput_per_million = "0.5"\noutput_per_million = "1.5"\n'

BAD_VALUES = [
    Bad("cron-four-fields", '[schedule]\ncron = "0 */2 * *"\n', "schedule.cron",
        ("'0 */2 * *'", "not a usable cron expression", "Wrong number of fields", "five fields", "0 */2 * * *")),
    Bad("cron-minute-61", '[schedule]\ncron = "61 * * * *"\n', "schedule.cron",
        ("'61 * * * *'", "61", "higher than the maximum", "five fields")),
    Bad("timezone-typo", '[schedule]\ntimezone = "Europe/Pariss"\n', "schedule.timezone",
        ("'Europe/Pariss' is not a time zone", 'did you mean "Europe/Paris"')),
    Bad("database-postgres-scheme", '[database]\nurl = "postgres://selfpub@127.0.0.1/selfpub"\n', "database.url",
        ("postgres://", "use postgresql+psycopg://")),
    Bad("database-mysql", '[database]\nurl = "mysql://selfpub@127.0.0.1/selfpub"\n', "database.url",
        ("mysql", "SQLite or PostgreSQL only", "sqlite:////absolute/path", "postgresql+psycopg://")),
    Bad("database-bare-file", '[database]\nurl = "selfpub.db"\n', "database.url",
        ("'selfpub.db' is not a database URL", "sqlite:///")),
    Bad("database-password-inline", '[database]\nurl = "postgresql+psycopg://selfpub:hunter2-pw@127.0.0.1/selfpub"\n',
        "database.url", ("password inline", "database.password_file", "database.password_env"), hidden="hunter2-pw"),
    Bad("database-password-in-toml", '[database]\npassword = "hunter2-pw"\n', "database.password",
        ("secret", "password_file", "password_env"), hidden="hunter2-pw"),
    Bad("base-url-embeded", '[agents.writer]\nbase_url = "embeded"\n', "agents.writer.base_url",
        ("'embeded' is neither 'embedded' nor an http(s) URL", 'did you mean "embedded"')),
    Bad("base-url-no-scheme", '[agents.critic]\nbase_url = "localhost:8080"\n', "agents.critic.base_url",
        ("'localhost:8080' is not an http:// or https:// URL", '"http://localhost:8080/v1"')),
    Bad("fallback-base-url", '[agents.research]\nfallbacks = [{ base_url = "127.0.0.1:8081", model = "m" }]\n'
        '[prices.m]\ninput_per_million = "1"\noutput_per_million = "1"\n',
        "agents.research.fallbacks[0].base_url", ("not an http:// or https:// URL", '"http://127.0.0.1:8081/v1"')),
    Bad("feed-missing-colon", '[[feeds]]\nurl = "htps//example.com/feed"\n', "feeds[0].url",
        ("'htps//example.com/feed' is not an http:// or https:// URL", '"https://example.com/feed"')),
    Bad("feed-local-file", '[[feeds]]\nurl = "file:///etc/passwd"\n', "feeds[0].url",
        ("'file:///etc/passwd'", "fetched over HTTP(S) only", "https://example.com/feed.xml")),
    Bad("feed-duplicate", '[[feeds]]\nurl = "https://example.com/feed"\n[[feeds]]\nurl = "https://EXAMPLE.com/feed/"\n',
        "feeds", ("listed twice", "feeds[1] repeats feeds[0]", "remove the repeated [[feeds]] table")),
    Bad("negative-daily-cap", '[budget]\ndaily_cap = "-1"\n', "budget.daily_cap",
        ("-1.000000 credits is negative", "0 or more credits")),
    Bad("negative-min-balance", '[budget]\nmin_balance = -2\n', "budget.min_balance", ("negative", "0 or more")),
    Bad("negative-reserve", '[budget]\nreserve = "-0.5"\n', "budget.reserve", ("-0.500000 credits is negative",)),
    Bad("negative-price", PRICE.replace('"0.5"', '"-0.5"'), "prices.smollm2-135m-instruct.input_per_million",
        ("negative", "0 or more")),
    Bad("negative-settle-threshold", '[wallet]\nsettle_threshold = "-5"\n', "wallet.settle_threshold",
        ("negative", "0 or more")),
    Bad("state-dir-unwritable", 'state_dir = "/proc/nope"\n', "state_dir",
        ("/proc/nope does not exist", "/proc is on a virtual file system", "install -d -m 700 /proc/nope")),
    Bad("sqlite-folder-unwritable", '[database]\nurl = "sqlite:////proc/nope/selfpub.db"\n', "database.url",
        ("the SQLite file's folder: /proc/nope does not exist", "virtual file system", "folder")),
    Bad("rpc-url-no-scheme", '[wallet]\nrpc_url = "127.0.0.1:8545"\n', "wallet.rpc_url",
        ("not an http:// or https:// URL", '"http://127.0.0.1:8545"')),
]


def write_config(root: Path, toml: str) -> Path:
    """A good config in root (state dir inside it) plus `toml`."""
    root.mkdir(parents=True, exist_ok=True)
    head = "" if "state_dir" in toml else f'state_dir = "{root / "state"}"\n'
    path = root / "selfpub.toml"
    path.write_text(head + toml)
    return path


def cli(*args: str, env: dict[str, str] | None = None):  # noqa: ANN201 - click's Result
    """`selfpub ARGS` in-process; the output joined on one line (rich may wrap)."""
    result = runner.invoke(app, list(args), env=env)
    return result, " ".join(result.output.split())


def assert_clean_refusal(result, output: str) -> None:  # noqa: ANN001
    """Exit 1 through typer's own exit, nothing raised, no traceback."""
    assert result.exit_code == 1, output
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash caught by the runner
    assert "Traceback" not in output


@pytest.mark.parametrize("bad", BAD_VALUES, ids=lambda b: b.name)
def test_issue14_config_check_refuses_what_breaks_later(tmp_path: Path, bad: Bad) -> None:
    path = write_config(tmp_path / "site", bad.toml)
    result, output = cli("--config", str(path), "config", "check")
    assert_clean_refusal(result, output)
    assert f"{bad.key}:" in output, output
    for phrase in bad.says:
        assert phrase in output, f"{phrase!r} missing from: {output}"
    assert "fix:" in output
    if bad.hidden:
        assert bad.hidden not in output
    assert not Path("/proc/nope").exists()


def test_issue14_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    """One config holding most bad values: one run of check names every key."""
    toml = ('state_dir = "/proc/nope"\n[schedule]\ncron = "61 * * * *"\ntimezone = "Europe/Pariss"\n'
            '[database]\nurl = "postgres://x@127.0.0.1/db"\n[budget]\ndaily_cap = "-1"\n'
            '[agents.writer]\nbase_url = "embeded"\n[[feeds]]\nurl = "file:///etc/passwd"\n')
    path = write_config(tmp_path / "site", toml)
    result, output = cli("--config", str(path), "config", "check")
    assert_clean_refusal(result, output)
    for key in ("state_dir", "schedule.cron", "schedule.timezone", "database.url", "budget.daily_cap",
                "agents.writer.base_url", "feeds[0].url"):
        assert f"{key}:" in output, (key, output)
    assert "7 problem(s)" in output


def _money_fields(model: type[BaseModel], prefix: str) -> list[str]:
    """Dotted keys of every Credits field under `model` (dict values reached through a sample key)."""
    found = []
    for name, field in model.model_fields.items():
        if any(getattr(m, "func", None) is check_credits for m in field.metadata):
            found.append(f"{prefix}{name}")
            continue
        inner = field.annotation
        args = getattr(inner, "__args__", ())
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            found += _money_fields(inner, f"{prefix}{name}.")
        elif args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel) and "dict" in str(inner):
            sample = "smollm2-135m-instruct" if name == "prices" else "devto"
            found += _money_fields(args[-1], f"{prefix}{name}.{sample}.")
    return found


MONEY_FIELDS = _money_fields(Settings, "")


def test_issue14_the_money_fields_are_all_found() -> None:
    """The walk finds the amounts the issue names and the rest (so a new one cannot slip past)."""
    for key in ("budget.daily_cap", "budget.min_balance", "budget.reserve", "wallet.settle_threshold",
                "prices.smollm2-135m-instruct.input_per_million", "approval.risky_max_cost",
                "wallet.engagement.devto.view"):
        assert key in MONEY_FIELDS
    # every field declared `: Credits` in the settings source is reached (one sample key per dict)
    source = (Path(__file__).resolve().parent.parent / "config" / "settings.py").read_text()
    assert len(MONEY_FIELDS) == source.count(": Credits")


@pytest.mark.parametrize("key", MONEY_FIELDS)
def test_issue14_every_money_field_refuses_a_negative_amount(tmp_path: Path, key: str) -> None:
    data: dict = {"state_dir": str(tmp_path / "state")}
    *path, last = key.split(".")
    node = data
    for part in path:
        node = node.setdefault(part, {})
    if path and path[0] == "prices":
        node.update({"input_per_million": "1", "output_per_million": "1"})
    node[last] = "-0.000001"
    with pytest.raises(ConfigError) as info:
        load_settings(data=data, environ={})
    problems = {p.key: p for p in info.value.problems}
    assert key in problems, problems
    assert "-0.000001 credits is negative" in problems[key].what and "0 or more" in problems[key].fix
    node[last] = "0"
    data.setdefault("budget", {}).setdefault("min_balance", "0")  # a resume_balance of 0 needs min_balance <= 0
    load_settings(data=data, environ={})  # zero is a fine cap, price or rate


# -- the good configs still pass ---------------------------------------------------------------------


def test_issue14_example_config_still_passes_check(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "selfpub.toml")
    result, output = cli("--config", str(tmp_path / "selfpub.toml"), "config", "check")
    assert result.exit_code == 0, output
    assert "ok" in output
    assert not (tmp_path / "state").exists()  # checking creates nothing


def test_issue14_init_output_passes_check(tmp_path: Path) -> None:
    result, output = cli("init", str(tmp_path / "site"))
    assert result.exit_code == 0, output
    result, output = cli("--config", str(tmp_path / "site" / "selfpub.toml"), "config", "check")
    assert result.exit_code == 0, output


def test_issue14_good_values_of_each_kind_pass(tmp_path: Path) -> None:
    secret = tmp_path / "db-password"
    secret.write_text("pw\n")
    secret.chmod(0o600)
    toml = (f'[schedule]\ncron = "*/15 9-17 * * mon-fri"\ntimezone = "Europe/Paris"\n'
            f'[database]\nurl = "postgresql+psycopg://selfpub@127.0.0.1:5432/selfpub"\npassword_file = "{secret}"\n'
            '[agents.writer]\nbase_url = "http://127.0.0.1:8080/v1"\n'
            '[[feeds]]\nurl = "https://example.com/feed"\n[[feeds]]\nurl = "https://example.com/other"\n'
            '[budget]\nreserve = "0"\n')
    path = write_config(tmp_path / "site", toml)
    result, output = cli("--config", str(path), "config", "check")
    assert result.exit_code == 0, output
    s = load_settings(path, {})
    # the password reaches the engine's URL only, never the URL in the settings
    assert s.database.url == "postgresql+psycopg://selfpub@127.0.0.1:5432/selfpub"
    assert s.database_url == "postgresql+psycopg://selfpub:pw@127.0.0.1:5432/selfpub"
    assert "pw@" not in s.model_dump_json()


def test_issue14_database_password_from_env_and_needs_postgres(tmp_path: Path) -> None:
    toml = '[database]\nurl = "postgresql://selfpub@db.example/selfpub"\npassword_env = "DB_PW"\n'
    s = load_settings(write_config(tmp_path / "a", toml), {"DB_PW": "p@ss/word"})
    assert s.database_url == "postgresql://selfpub:p%40ss%2Fword@db.example/selfpub"  # quoted for the URL
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path / "b", '[database]\npassword_env = "DB_PW"\n'), {"DB_PW": "x"})
    assert [p.key for p in info.value.problems] == ["database.password_file"]
    assert "not a PostgreSQL URL" in info.value.problems[0].what


# -- the cron check is APScheduler's own verdict -----------------------------------------------------

CRON_TOKENS = ["*", "*/2", "*/0", "0", "5", "59", "60", "61", "23", "24", "1-5", "5-1", "0-23/3", "1,2,3", ",",
               "mon-fri", "MON", "sun", "jan", "dec", "feb", "L", "last", "last fri", "?", "x", "-1", "31", "32",
               "30", "29", "2", "*/", "1/2", "7", "6", "", "*/15", "9-17", "1-31", "2-2"]


def apscheduler_verdict(expr: str) -> bool:
    """True when APScheduler would schedule `expr`: from_crontab accepts it and it fires at least once."""
    try:
        trigger = CronTrigger.from_crontab(expr, timezone="UTC")
    except Exception:  # noqa: BLE001 - any exception is a refusal by the scheduler
        return False
    return trigger.get_next_fire_time(None, datetime.now(timezone.utc)) is not None


def check_verdict(expr: str, state_dir: Path) -> bool:
    """True when the config loader accepts `expr` as schedule.cron."""
    try:
        load_settings(data={"state_dir": str(state_dir), "schedule": {"cron": expr}}, environ={})
    except ConfigError as exc:
        assert [p.key for p in exc.problems] == ["schedule.cron"]
        return False
    return True


mangled_cron = st.one_of(
    st.lists(st.sampled_from(CRON_TOKENS), min_size=3, max_size=7).map(" ".join),
    st.text(alphabet="0123456789*/,-? LWlastmonfrijd", max_size=24),
)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                                        HealthCheck.function_scoped_fixture])
@given(expr=mangled_cron)
def test_issue14_cron_check_agrees_with_apscheduler(tmp_path: Path, expr: str) -> None:
    assert check_verdict(expr, tmp_path / "state") == apscheduler_verdict(expr)


def test_issue14_cron_that_never_fires_is_refused(tmp_path: Path) -> None:
    """February 30th parses but never comes: the daemon would never run a cycle."""
    assert not apscheduler_verdict("0 0 30 2 *") and not check_verdict("0 0 30 2 *", tmp_path)


# -- environment overrides -----------------------------------------------------------------------------


def test_issue14_foreign_selfpub_variables_do_not_break_the_cli(tmp_path: Path) -> None:
    path = write_config(tmp_path / "site", "")
    env = {"SELFPUB_TEST_PG_URL": "postgresql://postgres@127.0.0.1:5432/test", "SELFPUB_CONFIG": str(path)}
    result, output = cli("config", "check", env=env)
    assert result.exit_code == 0, output
    assert load_settings(path, env).persona == "default"


@pytest.mark.parametrize(("var", "value", "says"), [
    ("SELFPUB_BUDGET__DAILY_CAP", "-1", ("negative", "budget.daily_cap", "0 or more")),
    ("SELFPUB_SCHEDULE__CRON", "61 * * * *", ("not a usable cron expression", "schedule.cron", "five fields")),
    ("SELFPUB_SCHEDULE__TIMEZONE", "Europe/Pariss", ('did you mean "Europe/Paris"',)),
    ("SELFPUB_DATABASE__URL", "postgresql://u:s3cret-pw@127.0.0.1/db", ("password inline", "password_env")),
    ("SELFPUB_BUDGET__MIN_BALANSE", "1", ("unknown key", "budget.min_balanse")),
    ("SELFPUB_BUDGT__DAILY_CAP", "1", ("not a selfpub setting", "did you mean SELFPUB_BUDGET__DAILY_CAP")),
    ("SELFPUB_PERSONA__NAME", "x", ("valid string", "environment override of persona")),
])
def test_issue14_env_override_errors_name_the_variable(tmp_path: Path, var: str, value: str, says: tuple) -> None:
    path = write_config(tmp_path / "site", "")
    result, output = cli("--config", str(path), "config", "check", env={var: value})
    assert_clean_refusal(result, output)
    assert f"{var}:" in output, output
    for phrase in says:
        assert phrase in output, (phrase, output)
    assert "s3cret-pw" not in output


# -- start-up errors: one clear message, never a traceback ------------------------------------------------


def test_issue14_no_config_file_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if Path("/etc/selfpub/selfpub.toml").exists():
        pytest.skip("this machine has a system-wide config")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SELFPUB_CONFIG", raising=False)
    for args in (("config", "check"), ("ledger", "report")):
        result, output = cli(*args)
        assert_clean_refusal(result, output)
        for phrase in ("none found", str(tmp_path / "selfpub.toml"), "/etc/selfpub/selfpub.toml", "selfpub init"):
            assert phrase in output, (phrase, output)
    assert list(tmp_path.iterdir()) == []  # no state dir, no database


@pytest.mark.parametrize("args", [("ledger", "report"), ("ledger", "deposit", "1"), ("run",)], ids=" ".join)
def test_issue14_unreachable_database_is_one_clear_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    path = write_config(tmp_path / "site", f'[database]\nurl = "{UNREACHABLE_PG}"\n[http]\nenabled = false\n')
    result, output = cli("--config", str(path), *args)
    assert_clean_refusal(result, output)
    assert f"cannot open the database {UNREACHABLE_PG}" in output
    assert "fix: check database.url" in output


def test_issue14_state_dir_that_cannot_be_created_is_a_config_problem(tmp_path: Path) -> None:
    path = write_config(tmp_path / "site", 'state_dir = "/proc/nope"\n')
    result, output = cli("--config", str(path), "ledger", "report")
    assert_clean_refusal(result, output)
    assert "state_dir: cannot create /proc/nope" in output and "install -d" in output


def test_issue14_state_dir_under_a_file_is_refused_and_a_good_one_untouched(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    path = write_config(tmp_path / "site", f'state_dir = "{tmp_path / "a-file" / "state"}"\n')
    result, output = cli("--config", str(path), "config", "check")
    assert_clean_refusal(result, output)
    assert f"state_dir: {tmp_path / 'a-file'} is not a folder" in output
    state = tmp_path / "state"
    state.mkdir()
    before = state.stat().st_mtime_ns
    good = write_config(tmp_path / "good", f'state_dir = "{state}"\n')
    result, output = cli("--config", str(good), "config", "check")
    assert result.exit_code == 0, output
    assert state.stat().st_mtime_ns == before and list(state.iterdir()) == []
