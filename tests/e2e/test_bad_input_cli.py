"""Bad config and bad command lines through the real `selfpub` executable: a clear message, the
documented exit code, and nothing written.

Exit codes (the convention these tests pin):
    1   the configuration is wrong (every problem listed with its key and a fix), or a value the
        command checks itself is wrong (an amount)
    2   a usage error: typer/click's own (missing FILE, a --format not in the choices) and the
        commands' argument checks that follow it (dates, --until before --since, an unknown --to)

"Nothing written" is checked on a state dir that already holds a funded ledger: the files with
their sizes and mtimes and the row count of every table are the same before and after.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.support import run_cli, run_cli_many, snapshot, sqlite_counts

pytestmark = pytest.mark.timeout(300)

POST = "---\ntitle: A hand-written post\ntags: [python]\n---\nBody.\n"
LEAKY = "devto-Leaky-Secret-7f3a9c"


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    config: str = ""  # TOML added to a good config
    code: int = 1
    says: tuple[str, ...] = ()  # every one must appear in the output
    setup: str = ""  # name of a file fixture to create


CONFIG_CASES = [
    Case("unknown-key", ("ledger", "deposit", "5"), '[budget]\nmin_balanse = "1"\n',
         says=("budget.min_balanse", "unknown key", "did you mean `min_balance`")),
    Case("wrong-type", ("ledger", "deposit", "5"), '[schedule]\ninterval_minutes = "often"\n',
         says=("schedule.interval_minutes", "valid integer", "whole number")),
    Case("secret-in-toml", ("ledger", "deposit", "5"), f'[publishers.devto]\napi_key = "{LEAKY}"\n',
         says=("publishers.devto.api_key", "secret", "api_key_file", "chmod 600")),
    Case("secret-in-toml-as-number", ("ledger", "deposit", "5"), "[publishers.devto]\napi_key = 918273645546372819\n",
         says=("publishers.devto.api_key", "secret")),
    Case("min-above-resume", ("ledger", "deposit", "5"), '[budget]\nmin_balance = "5"\nresume_balance = "2"\n',
         says=("budget.min_balance", "resume_balance", "min_balance <= resume_balance")),
    Case("missing-price", ("ledger", "deposit", "5"), '[agents.writer]\nmodel = "gpt-x"\n',
         says=("prices.gpt-x", "no price", '[prices."gpt-x"]', "input_per_million")),
    Case("missing-secret-file", ("ledger", "deposit", "5"),
         '[publishers.devto]\nenabled = true\napi_key_file = "{root}/no-such-key"\n',
         says=("publishers.devto.api_key_file", "no-such-key", "No such file")),
    Case("unreadable-secret-file", ("ledger", "deposit", "5"),
         '[publishers.devto]\nenabled = true\napi_key_file = "{root}/key-dir"\n', setup="key-dir",
         says=("publishers.devto.api_key_file", "cannot read", "key-dir")),
    Case("group-readable-secret-file", ("ledger", "deposit", "5"),
         '[publishers.devto]\nenabled = true\napi_key_file = "{root}/key-0640"\n', setup="key-0640",
         says=("publishers.devto.api_key_file", "readable by group or others", "mode 640", "chmod 600")),
    Case("bad-toml-syntax", ("ledger", "deposit", "5"), "[budget\nmin_balance = \n", says=("not valid TOML", "line")),
    # issue 14 part 3 (every bad value is in tests/test_config_check.py; these go through the real executable):
    # values that used to pass and break later are refused before anything runs, a dead database is one line
    Case("issue14-cron-four-fields", ("ledger", "deposit", "5"), '[schedule]\ncron = "0 */2 * *"\n',
         says=("schedule.cron", "not a usable cron expression", "five fields")),
    Case("issue14-database-password-inline", ("ledger", "report"),
         f'[database]\nurl = "postgresql+psycopg://u:{LEAKY}@127.0.0.1/db"\n',
         says=("database.url", "password inline", "database.password_file")),
    Case("issue14-negative-daily-cap", ("ledger", "deposit", "5"), '[budget]\ndaily_cap = "-1"\n',
         says=("budget.daily_cap", "negative", "0 or more")),
    Case("issue14-report-unreachable-database", ("ledger", "report"),
         '[database]\nurl = "postgresql+psycopg://selfpub@127.0.0.1:1/selfpub"\n',
         says=("cannot open the database postgresql+psycopg://selfpub@127.0.0.1:1/selfpub", "fix: check database.url")),
    Case("issue14-run-unreachable-database", ("run",),
         '[database]\nurl = "postgresql+psycopg://selfpub@127.0.0.1:1/selfpub"\n',
         says=("cannot open the database", "fix: check database.url")),
]

CLI_CASES = [
    Case("amount-too-precise", ("ledger", "deposit", "1.0000001"), says=("1.0000001", "more than 6 decimal places")),
    Case("amount-negative", ("ledger", "deposit", "--", "-5"), says=("-5", "more than 0")),
    Case("amount-not-a-number", ("ledger", "deposit", "abc"), says=("abc", "not a number", "1.25")),
    Case("amount-exponent", ("ledger", "deposit", "1e3"), says=("1e3", "exponent", "1.25")),
    Case("publish-unknown-platform", ("publish", "post.md", "--to", "myspace"), code=2,
         says=("myspace", "devto, bluesky, local")),
    Case("publish-unconfigured-platform", ("publish", "post.md", "--to", "bluesky"), code=2,
         says=("publishers.bluesky.handle",)),
    Case("publish-missing-file", ("publish", "no-such-post.md"), code=2, says=("no-such-post.md", "does not exist")),
    Case("report-bad-format", ("ledger", "report", "--format", "xml"), code=2, says=("--format", "xml", "table")),
    Case("report-bad-date", ("ledger", "report", "--since", "2024-13-01"), code=2, says=("--since", "2024-13-01", "YYYY-MM-DD")),
    Case("report-until-before-since", ("ledger", "report", "--since", "2024-02-01", "--until", "2024-01-01"), code=2,
         says=("--until", "before --since")),
]

GOOD = 'state_dir = "{root}/state"\n'


def prepare(root: Path, case: Case) -> Path:
    """A folder with a good config plus the case's TOML, a post, and a state dir holding a funded ledger."""
    root.mkdir(parents=True)
    (root / "post.md").write_text(POST)
    if case.setup == "key-dir":
        (root / "key-dir").mkdir(mode=0o700)
    elif case.setup.startswith("key-0"):
        key = root / case.setup
        key.write_text("a-secret-value\n")
        key.chmod(int(case.setup[4:], 8))
    return root


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Every case run once (two at a time: each run pays ~2 s of imports), with before/after snapshots."""
    base = tmp_path_factory.mktemp("bad-cli")
    seed = base / "seed"
    seed.mkdir()
    (seed / "selfpub.toml").write_text(GOOD.format(root=seed))
    done = run_cli(["--config", "selfpub.toml", "ledger", "deposit", "3.5"], seed)
    assert done.returncode == 0, done.stdout + done.stderr
    calls, dirs = [], {}
    for case in CONFIG_CASES + CLI_CASES:
        root = prepare(base / case.name, case)
        os.system(f"cp -a {seed / 'state'} {root / 'state'}")  # noqa: S605 - same bytes and mtimes as the seed
        (root / "selfpub.toml").write_text(GOOD.format(root=root) + case.config.format(root=root))
        before = (snapshot(root), sqlite_counts(root / "state" / "selfpub.db"))
        dirs[case.name] = (root, before)
        calls.append((["--config", "selfpub.toml", *case.args], root))
    out = {}
    for case, proc in zip(CONFIG_CASES + CLI_CASES, run_cli_many(calls, workers=3)):
        root, before = dirs[case.name]
        out[case.name] = (proc, before, (snapshot(root), sqlite_counts(root / "state" / "selfpub.db")))
    return out


@pytest.mark.parametrize("case", CONFIG_CASES + CLI_CASES, ids=lambda c: c.name)
def test_bad_input_is_refused_clearly_and_writes_nothing(results, case: Case) -> None:
    proc, before, after = results[case.name]
    output = " ".join((proc.stdout + proc.stderr).split())  # rich wraps long lines
    assert proc.returncode == case.code, output
    for phrase in case.says:
        assert phrase in output, f"{phrase!r} missing from: {output}"
    assert "Traceback" not in output
    assert LEAKY not in output and "918273645546372819" not in output
    files_before, rows_before = before
    files_after, rows_after = after
    assert rows_before and rows_after == rows_before
    assert files_after == files_before, {k: (files_before.get(k), files_after.get(k))
                                         for k in set(files_before) | set(files_after)
                                         if files_before.get(k) != files_after.get(k)}


def test_issue14_no_config_found_says_so_and_creates_nothing(tmp_path: Path) -> None:
    """No --config, no $SELFPUB_CONFIG, no ./selfpub.toml: say where selfpub looked, make no database."""
    if Path("/etc/selfpub/selfpub.toml").exists():
        pytest.skip("this machine has a system-wide config")
    var_lib = Path("/var/lib/selfpub").exists()
    proc = run_cli(["ledger", "report"], tmp_path)
    output = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 1, output
    assert "none found" in output and "selfpub init" in output and "Traceback" not in output
    assert list(tmp_path.iterdir()) == [] and Path("/var/lib/selfpub").exists() == var_lib


def test_issue14_foreign_selfpub_variable_does_not_break_the_cli(tmp_path: Path) -> None:
    (tmp_path / "selfpub.toml").write_text(GOOD.format(root=tmp_path))
    env = {"SELFPUB_TEST_PG_URL": "postgresql://postgres@127.0.0.1:5432/test", "SELFPUB_CONFIG": "selfpub.toml"}
    proc = run_cli(["config", "check"], tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
