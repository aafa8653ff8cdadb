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
from ledger.funding import deposit
from ledger.query import as_moment, midnight
from ledger.reads import runway_days
from ledger.reports import build_report, render_table, to_csv
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
        "pause_reason", "runway_note", "sustain", "per_article",
    ]
    assert data["version"] == 1 and data["unit"] == "ucr"
    assert list(data["income"]) == ["total", "tips", "engagement", "other"]
    assert list(data["spend"]) == ["total", "by_agent", "by_model", "other"]
    assert list(data["posts"][0]) == ["task_id", "post_id", "cost", "earnings", "net"]
    assert list(data["series"][0]) == ["start", "end", "spend", "income", "balance"]
    assert list(data["burn"]) == ["per_day", "net_per_day", "window_days"]

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


def test_csv_and_table_render(journal: Journal, clock: Clock) -> None:
    budget = populate(journal, clock)
    report = build_report(journal, budget)
    rows = list(csv.reader(io.StringIO(to_csv(report))))
    assert rows[0] == ["section", "key", "field", "value"]
    assert ["summary", "balance", "", f"{report.balance / 1_000_000:.6f}"] in rows
    assert {r[0] for r in rows[1:]} >= {"summary", "income", "spend_by_agent", "spend_by_model", "post", "series"}
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
    csv_out = run(cli_config, "ledger", "report", "--format", "csv", "--since", "2020-01-01", "--until", "2099-12-31")
    assert csv_out.exit_code == 0 and csv_out.stdout.startswith("section,key,field,value")
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
