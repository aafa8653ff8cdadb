"""`build_report` agrees with the postings recomputed the slow way; JSON keys are stable; the CLI prints it."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config.settings import BudgetSettings
from daemon.cli import app
from ledger import TIPS, WALLET, Budget, Entry, Journal
from ledger.accounts import GAS, NATIVE, compute_account, provider_account
from ledger.funding import deposit
from ledger.query import as_moment, midnight
from ledger.reads import runway_days
from ledger.reports import CSV_COLUMNS, build_report, render_table, to_csv
from tests.ledger.conftest import Clock
from tests.ledger.ledgerdata import START, expected, populate, wallet_at


RANGES = {
    "all": (None, None),
    "whole days": (date(2026, 3, 4), date(2026, 3, 8)),
    "partial days": (START + timedelta(days=1, hours=3, minutes=1), START + timedelta(days=6, hours=2)),
    "inside one day": (START + timedelta(days=2, hours=4), START + timedelta(days=2, hours=11)),
}


@pytest.mark.parametrize("span", sorted(RANGES))
def test_report_figures_equal_the_postings(journal: Journal, clock: Clock, span: str) -> None:
    budget = populate(journal, clock)
    since, until = RANGES[span]
    report = build_report(journal, budget, since=since, until=until)
    start = as_moment(since)
    end = as_moment(until, end=True) or clock.now + timedelta(microseconds=1)
    want = expected(journal, start, end)
    data = report.to_dict()
    assert data["income"]["tips"] == want["tips"]
    assert data["income"]["engagement"] == want["engagement"]
    assert data["spend"]["by_agent"] == want["by_agent"]
    assert data["spend"]["by_model"] == want["by_model"]
    assert data["spend"]["other"] == want["other_spend"]
    assert data["posts"] == want["posts"]
    assert data["spend"]["total"] == sum(want["spend_by_day"].values())
    assert data["income"]["total"] == sum(want["income_by_day"].values())
    assert data["net"] == data["income"]["total"] - data["spend"]["total"]
    for period in report.series:
        assert period.spend == want["spend_by_day"].get(period.start, 0), period
        assert period.income == want["income_by_day"].get(period.start, 0), period
        assert period.balance == wallet_at(journal, min(midnight(period.end), end))
    assert sum(p.spend for p in report.series) == data["spend"]["total"]


def test_summary_figures_are_the_budgets(journal: Journal, clock: Clock) -> None:
    budget = populate(journal, clock)
    hold = budget.reserve("writer", 70_000)
    report = build_report(journal, budget)
    snap = budget.snapshot()
    assert (report.balance, report.available, report.reserved, report.liabilities) == (
        snap.wallet, snap.available, 70_000, snap.liabilities
    )
    assert report.balance == journal.balance("assets:wallet")
    assert report.receivable == journal.balance("assets:receivable:engagement")
    assert report.liabilities == -journal.balance("liabilities:provider")
    budget.release(hold)


def test_week_and_month_series_add_up_to_the_days(journal: Journal, clock: Clock) -> None:
    budget = populate(journal, clock, days=40)
    days = build_report(journal, budget, by="day").series
    for by in ("week", "month"):
        periods = build_report(journal, budget, by=by).series
        assert sum(p.spend for p in periods) == sum(d.spend for d in days)
        assert sum(p.income for p in periods) == sum(d.income for d in days)
        assert periods[-1].balance == days[-1].balance
        assert all(p.start.weekday() == 0 for p in periods) if by == "week" else all(p.start.day == 1 for p in periods)
    assert [p.start for p in build_report(journal, budget, by="month").series] == [date(2026, 3, 1), date(2026, 4, 1)]


def test_burn_rate_and_runway(journal: Journal, clock: Clock) -> None:
    budget = Budget(journal, BudgetSettings(daily_cap="100", per_cycle_cap="100", min_balance="0"), clock=clock)
    assert runway_days(journal, budget) is None  # nothing burnt yet
    deposit(journal, 10_000_000, idempotency_key="fund", time=clock.now)
    clock.advance(days=1)
    for day in range(14):  # 0.1 credit a day for two weeks
        budget.commit(budget.reserve("writer", 100_000, provider="embedded"), 100_000)
        clock.advance(days=1)
    report = build_report(journal, budget)
    assert report.burn.per_day == 100_000 and report.burn.window_days == 7
    available = 10_000_000 - 1_400_000
    assert report.runway_days == pytest.approx(available / 100_000, abs=0.01)
    assert runway_days(journal, budget) == report.runway_days
    # Income counts against the net burn only.
    journal.post("tip", [Entry(WALLET, 350_000), Entry(TIPS, -350_000)], idempotency_key="tip",
                 time=clock.now - timedelta(hours=1))
    again = build_report(journal, budget)
    assert again.burn.per_day == report.burn.per_day
    assert again.burn.net_per_day == report.burn.per_day - 50_000


def test_a_young_ledger_burns_over_its_own_age_at_least_a_day(journal: Journal, clock: Clock) -> None:
    budget = Budget(journal, BudgetSettings(min_balance="0"), clock=clock)
    deposit(journal, 1_000_000, idempotency_key="fund", time=clock.now)
    clock.advance(hours=2)
    budget.commit(budget.reserve("writer", 50_000), 50_000)
    assert build_report(journal, budget).burn.per_day == 50_000  # one day, not two hours
    clock.advance(days=2)
    assert build_report(journal, budget).burn.per_day == int(50_000 / ((2 * 24 + 2) / 24))


def test_report_shows_the_pause_and_why(journal: Journal, clock: Clock) -> None:
    budget = Budget(journal, BudgetSettings(min_balance="1", resume_balance="2"), clock=clock)
    budget.evaluate()
    report = build_report(journal, budget)
    assert report.pause.paused and report.to_dict()["paused"] is True
    assert "min_balance" in report.to_dict()["pause_reason"]


def test_json_keys_are_stable(journal: Journal, clock: Clock) -> None:
    budget = populate(journal, clock)
    data = json.loads(build_report(journal, budget).to_json())
    assert list(data) == [
        "version", "generated_at", "commodity", "unit", "since", "until", "by", "balance", "available", "reserved",
        "liabilities", "receivable", "income", "spend", "net", "posts", "series", "burn", "runway_days", "paused",
        "pause_reason", "runway_note", "sustain", "gas", "funding", "per_article", "reads",
    ]
    assert data["version"] == 1 and data["unit"] == "ucr"
    assert list(data["income"]) == ["total", "tips", "engagement", "other", "reads"]
    assert list(data["spend"]) == ["total", "by_agent", "by_model", "other"]
    assert list(data["posts"][0]) == ["task_id", "post_id", "cost", "earnings", "net"]
    assert list(data["series"][0]) == ["start", "end", "spend", "income", "balance"]
    assert list(data["burn"]) == ["per_day", "net_per_day", "window_days"]
    assert list(data["funding"]) == ["deposits", "tips", "series"]
    assert list(data["funding"]["series"][0]) == ["start", "end", "deposits", "tips"]

    def no_floats(value: object, path: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                no_floats(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                no_floats(v, f"{path}[{i}]")
        else:
            assert not isinstance(value, float) or path == ".runway_days", path

    no_floats(data)


def credits(text: str) -> int:
    whole, frac = text.lstrip("-").split(".")
    assert len(frac) == 6, text
    return (-1 if text.startswith("-") else 1) * (int(whole) * 1_000_000 + int(frac))


@pytest.mark.parametrize("by", ["day", "week", "month"])
def test_csv_is_one_row_per_period_with_stable_columns(journal: Journal, clock: Clock, by: str) -> None:
    budget = populate(journal, clock, days=40)
    report = build_report(journal, budget, by=by)
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert list(rows[0]) == list(CSV_COLUMNS) == [
        "start", "end", "spend", "income", "tips", "engagement", "other_income", "deposits", "net", "balance", "reads"
    ]
    assert [(r["start"], r["end"]) for r in rows] == [(p.start.isoformat(), p.end.isoformat()) for p in report.series]
    want = expected(journal, None, clock.now + timedelta(microseconds=1))
    for row, period in zip(rows, report.series):
        assert credits(row["spend"]) == period.spend and credits(row["balance"]) == period.balance
        assert credits(row["income"]) == period.income == (
            credits(row["tips"]) + credits(row["engagement"]) + credits(row["other_income"]) + credits(row["reads"]))
        assert credits(row["net"]) == period.income - period.spend
    assert sum(credits(r["tips"]) for r in rows) == want["tips"]
    assert sum(credits(r["deposits"]) for r in rows) == 20_000_000 == report.deposits
    assert sum(credits(r["engagement"]) for r in rows) == sum(want["engagement"].values())


def test_funding_shows_deposits_and_tips_by_period(journal: Journal, clock: Clock) -> None:
    budget = populate(journal, clock)
    deposit(journal, 1_500_000, time=clock.now - timedelta(hours=2))
    wrong = deposit(journal, 9_000_000, time=clock.now - timedelta(hours=1)).txn_id
    journal.reverse(wrong, idempotency_key="rev", memo="typo", time=clock.now - timedelta(minutes=30))
    data = build_report(journal, budget, by="day").to_dict()
    funding = data["funding"]
    assert funding["deposits"] == 21_500_000  # the reversed deposit nets to nothing
    assert funding["tips"] == data["income"]["tips"] > 0
    assert sum(p["tips"] for p in funding["series"]) == funding["tips"]
    assert sum(p["deposits"] for p in funding["series"]) == funding["deposits"]
    assert funding["series"][0]["deposits"] == 20_000_000 and funding["series"][-1]["deposits"] == 1_500_000
    from rich.console import Console

    console = Console(record=True, width=120)
    render_table(build_report(journal, budget), console)
    text = console.export_text()
    assert "Funding" in text and "21.500000" in text


def test_every_post_a_task_made_shows_in_its_row(journal: Journal, clock: Clock) -> None:
    """Compute is booked before a post exists, so the post column comes from what the task published."""
    budget = populate(journal, clock)
    journal.post("compute", [Entry(compute_account("writer"), 5_000), Entry(provider_account("embedded"), -5_000)],
                 idempotency_key="c-new", task_id="task-new", time=clock.now - timedelta(hours=1))
    without = {p.task_id: p.post_id for p in build_report(journal, budget).posts}
    assert without["task-new"] == ""  # no income yet, so nothing in the ledger names its posts
    made = {"task-new": ["devto:1001", "bluesky:at://did:plc:x/app.bsky.feed.post/3k"], "task-3": ["local:post.md"]}
    posts = {p.task_id: p for p in build_report(journal, budget, posts_of=made).posts}
    assert posts["task-new"].post_id == "bluesky:at://did:plc:x/app.bsky.feed.post/3k,devto:1001"
    assert posts["task-new"].cost == 5_000
    assert posts["task-3"].post_id == "bluesky:7,local:post.md"  # the engagement's post and the one it made


def test_gas_is_reported_in_whole_wei(journal: Journal, clock: Clock) -> None:
    budget = populate(journal, clock)
    spend = build_report(journal, budget).spend_total
    wei = 21_000 * 1_234_567_891
    journal.post("gas", [Entry(GAS, wei, "WEI"), Entry(NATIVE, -wei, "WEI")], idempotency_key="gas-1",
                 time=clock.now - timedelta(hours=1))
    report = build_report(journal, budget)
    assert report.to_dict()["gas"] == {"WEI": 25_925_925_711_000} and type(report.gas["WEI"]) is int
    assert report.spend_total == spend  # wei are not credits: never mixed into the CR figures
    from rich.console import Console

    console = Console(record=True, width=120)
    render_table(report, console)
    assert "25925925711000" in console.export_text()


def test_table_renders(journal: Journal, clock: Clock) -> None:
    budget = populate(journal, clock)
    report = build_report(journal, budget)
    from rich.console import Console

    console = Console(record=True, width=120)
    render_table(report, console)
    out = console.export_text()
    for title in ("selfpub ledger", "Income by source", "Spend by agent", "Spend by model", "P&L per post", "By day"):
        assert title in out


# -- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def cli_config(tmp_path: Path, db_url: str) -> Path:
    cfg = tmp_path / "selfpub.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[database]\nurl = "{db_url}"\n')
    return cfg


def run(cfg: Path, *args: str):  # noqa: ANN201
    return CliRunner().invoke(app, ["--config", str(cfg), *args], catch_exceptions=False)


def test_cli_deposit_report_export_plot(cli_config: Path, tmp_path: Path) -> None:
    assert run(cli_config, "ledger", "deposit", "2.5", "--memo", "seed").exit_code == 0
    result = run(cli_config, "ledger", "report", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["balance"] == data["available"] == 2_500_000
    table = run(cli_config, "ledger", "report", "--by", "week")
    assert table.exit_code == 0 and "2.500000" in table.stdout
    csv_out = run(cli_config, "ledger", "report", "--csv", "--period", "month", "--since", "2020-01-01",
                  "--until", "2099-12-31")
    assert csv_out.exit_code == 0 and csv_out.stdout.startswith(",".join(CSV_COLUMNS) + "\n")
    assert len(csv_out.stdout.splitlines()) == 1 + 80 * 12  # one row per month of the range
    out = tmp_path / "ledger.journal"
    assert run(cli_config, "ledger", "export", "--format", "hledger", "--out", str(out)).exit_code == 0
    assert "assets:wallet" in out.read_text()
    bean = run(cli_config, "ledger", "export", "--format", "beancount")
    assert bean.exit_code == 0 and "open Assets:Wallet" in bean.stdout
    png = tmp_path / "ledger.png"
    assert run(cli_config, "ledger", "plot", "--out", str(png)).exit_code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args",
    [
        ("ledger", "report", "--since", "2026-13-01"),
        ("ledger", "report", "--since", "2026-03-05", "--until", "2026-03-01"),
        ("ledger", "report", "--by", "year"),
        ("ledger", "report", "--format", "xml"),
        ("ledger", "plot", "--out", "chart.gif"),
        ("ledger", "export", "--format", "ledger"),
    ],
)
def test_cli_refuses_bad_options(cli_config: Path, args: tuple[str, ...]) -> None:
    result = run(cli_config, *args)
    assert result.exit_code == 2, result.output


def test_cli_deposit_is_refused_on_a_chain_wallet(tmp_path: Path) -> None:
    """On a chain wallet assets:wallet mirrors the token balance: a hand deposit would be drift (issue 14.6)."""
    cfg = tmp_path / "selfpub.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[wallet]\nmode = "embedded"\n')
    result = run(cfg, "ledger", "deposit", "2")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "this wallet is 'embedded'" in result.output and "selfpub wallet scan" in result.output
    report = run(cfg, "ledger", "report", "--format", "json")
    assert report.exit_code == 0 and json.loads(report.stdout)["balance"] == 0


def test_cli_report_names_the_post_each_task_published(cli_config: Path, tmp_path: Path) -> None:
    """The P&L's post column: a task's compute carries no post id, the outbox says what it published."""
    import asyncio

    from daemon.context import AppContext
    from publishers.local import LocalPublisher
    from publishers.outbox import Outbox
    from publishers.protocol import Post

    ctx = AppContext(cli_config, environ={})
    ctx.journal.post("compute", [Entry(compute_account("writer"), 42_000), Entry(provider_account("embedded"), -42_000)],
                     idempotency_key="c-9", task_id="task-9")
    published = asyncio.run(Outbox(ctx.engine).deliver(
        LocalPublisher(tmp_path / "out"), Post("key-9", "A title", "Body.", "Short.", task_id="task-9")))
    data = json.loads(run(cli_config, "ledger", "report", "--format", "json").stdout)
    assert data["posts"] == [
        {"task_id": "task-9", "post_id": f"local:{published.remote_id}", "cost": 42_000, "earnings": 0, "net": -42_000}
    ]
    table = run(cli_config, "ledger", "report")
    assert f"local:{published.remote_id}"[:20] in table.stdout.replace("\n", "")
