"""The status page's chart and `selfpub ledger plot` tell one story: the same points and the same events
(a deposit, the pause, a tip, the resume), from ledger.reads.money_story."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Engine

from config.settings import BudgetSettings
from daemon.http import chart_svg
from daemon.status import StatusReader
from ledger import TIPS, WALLET, Budget, Entry, Journal
from ledger.funding import deposit
from ledger.plot import points, render, story
from ledger.reads import DEPOSIT, PAUSE, RESUME, TIP, money_story, pause_events

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
SETTINGS = BudgetSettings(min_balance="0.35", resume_balance="0.6", daily_cap="5", per_cycle_cap="5")


def _pause_tip_resume(journal: Journal) -> tuple[Budget, datetime, datetime]:
    """Fund 1 credit, spend down to the pause, tip 0.6: the budget resumes. (budget, tip time, end)."""
    now = [T0]
    budget = Budget(journal, SETTINGS, clock=lambda: now[0])
    deposit(journal, 1_000_000, idempotency_key="fund", time=T0)
    while not budget.evaluate().paused:  # spend down to the pause
        now[0] += timedelta(minutes=2)
        budget.commit(budget.reserve("writer", 200_000, provider="embedded"), 200_000)
    now[0] += timedelta(minutes=5)
    journal.post("tip", [Entry(WALLET, 600_000), Entry(TIPS, -600_000)], idempotency_key="tip", time=now[0])
    assert not budget.evaluate().paused  # resumed
    return budget, now[0], now[0] + timedelta(minutes=1)


def test_plot_and_status_page_read_one_series(engine: Engine, tmp_path: Path) -> None:
    journal = Journal(engine)
    journal.migrate()
    _, _, end = _pause_tip_resume(journal)

    page = StatusReader(journal, "default").series(days=30, now=end)
    plotted = points(journal, since=end - timedelta(days=30), now=end)
    assert plotted == page
    balances = [p.balance for p in page]
    low = balances.index(min(balances))
    assert min(balances) < 350_000 < 600_000 <= balances[-1] and 0 < low < len(balances) - 1  # down, then up
    assert page[-1].income == 600_000 and page[-1].spend == 1_000_000 - min(balances)
    assert render(journal, tmp_path / "ledger.png", now=end).stat().st_size > 10_000


def test_plot_and_page_mark_the_same_deposit_pause_tip_and_resume(engine: Engine, tmp_path: Path) -> None:
    journal = Journal(engine)
    journal.migrate()
    budget, tipped, end = _pause_tip_resume(journal)

    # what the console reads (daemon/console.gather) and what `selfpub ledger plot` draws
    page_points, page_events = money_story(journal, since=end - timedelta(days=30), until=end,
                                           min_balance=SETTINGS.min_balance, resume_balance=SETTINGS.resume_balance)
    plot_points, plot_events = story(journal, since=end - timedelta(days=30), now=end, budget=SETTINGS)
    assert (plot_points, plot_events) == (page_points, page_events)
    assert [e.kind for e in page_events] == [DEPOSIT, PAUSE, TIP, RESUME]
    deposit_, pause, tip, resume = page_events
    assert (deposit_.at, deposit_.amount) == (T0, 1_000_000) and (tip.at, tip.amount) == (tipped, 600_000)
    assert resume.at == tipped  # the tip is what lifted the balance back over resume_balance
    # the pause is where the balance first fell under min_balance: where the budget paused
    under = next(p for p in page_points if p.balance < SETTINGS.min_balance)
    assert pause.at == under.at and budget.pause_state().paused is False

    svg = chart_svg(page_points, page_events)
    assert [m for m in re.findall(r'class="event ev-(\w+)"', svg)] == [DEPOSIT, PAUSE, TIP, RESUME]
    assert "tip +0.600000" in svg and "deposit +1.000000" in svg

    # the PNG has the markers too: the same chart with and without its events differs
    with_events = render(journal, tmp_path / "with.svg", now=end, budget=SETTINGS).read_text()
    without = render(journal, tmp_path / "without.svg", now=end).read_text()
    for label in ("pause", "resume", "tip +0.600000", "deposit +1.000000"):
        assert label in with_events, label
    assert "resume" not in without and "tip +0.600000" in without  # thresholds unknown: no pause/resume marks


def test_pause_events_follow_the_budgets_hysteresis() -> None:
    from ledger.reads import Point

    at = [T0 + timedelta(minutes=i) for i in range(7)]
    balances = [1_000_000, 300_000, 500_000, 340_000, 600_000, 340_000, 200_000]
    pts = [Point(t, b, 0, 0) for t, b in zip(at, balances)]
    events = pause_events(pts, 350_000, 600_000)
    # 0.5 is between the thresholds: still paused (no resume, no second pause) until 0.6
    assert [(e.kind, e.at) for e in events] == [(PAUSE, at[1]), (RESUME, at[4]), (PAUSE, at[5])]
    assert pause_events([Point(T0, 100, 0, 0)], 350_000, 600_000) == []  # starting paused is no event


def test_selfpub_ledger_plot_marks_the_pause_tip_and_resume(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from daemon.cli import app
    from kernel.db import make_engine

    cfg = tmp_path / "selfpub.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "state"}"\n[budget]\nmin_balance = "0.35"\nresume_balance = "0.6"\n')

    def run(*args: str):  # noqa: ANN202
        return CliRunner().invoke(app, ["--config", str(cfg), *args], catch_exceptions=False)

    assert run("ledger", "deposit", "1").exit_code == 0
    journal = Journal(make_engine(f"sqlite:///{tmp_path / 'state' / 'selfpub.db'}"))
    for i in range(4):  # 1.0 -> 0.2: under min_balance
        journal.post("compute", [Entry("expenses:compute:writer", 200_000), Entry("liabilities:provider:embedded", -200_000)],
                     idempotency_key=f"spend-{i}")
    journal.post("tip", [Entry(WALLET, 600_000), Entry(TIPS, -600_000)], idempotency_key="tip")  # 0.8: resumes
    journal.engine.dispose()
    out = tmp_path / "chart.svg"
    result = run("ledger", "plot", "--out", str(out))
    assert result.exit_code == 0, result.output
    svg = out.read_text()
    # matplotlib writes each text as a comment next to its glyphs: the marks' labels, in the order drawn
    marks = re.findall(r"<!-- (deposit \+1\.000000|pause|tip \+0\.600000|resume) -->", svg)
    assert marks[:4] == ["deposit +1.000000", "pause", "tip +0.600000", "resume"], marks
