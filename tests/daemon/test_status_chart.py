"""The status page's chart and `selfpub ledger plot` draw the same series: a pause, a tip and the resume show in both."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Engine

from config.settings import BudgetSettings
from daemon.status import StatusReader
from ledger import TIPS, WALLET, Budget, Entry, Journal
from ledger.funding import deposit
from ledger.plot import points, render

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)


def test_plot_and_status_page_read_one_series(engine: Engine, tmp_path: Path) -> None:
    journal = Journal(engine)
    journal.migrate()
    now = [T0]
    budget = Budget(journal, BudgetSettings(min_balance="0.35", resume_balance="0.6", daily_cap="5",
                                            per_cycle_cap="5"), clock=lambda: now[0])
    deposit(journal, 1_000_000, idempotency_key="fund", time=T0)
    while not budget.evaluate().paused:  # spend down to the pause
        now[0] += timedelta(minutes=2)
        budget.commit(budget.reserve("writer", 200_000, provider="embedded"), 200_000)
    now[0] += timedelta(minutes=5)
    journal.post("tip", [Entry(WALLET, 600_000), Entry(TIPS, -600_000)], idempotency_key="tip", time=now[0])
    assert not budget.evaluate().paused  # resumed
    end = now[0] + timedelta(minutes=1)

    page = StatusReader(journal, "default").series(days=30, now=end)
    plotted = points(journal, since=end - timedelta(days=30), now=end)
    assert plotted == page
    balances = [p.balance for p in page]
    low = balances.index(min(balances))
    assert min(balances) < 350_000 < 600_000 <= balances[-1] and 0 < low < len(balances) - 1  # down, then up
    assert page[-1].income == 600_000 and page[-1].spend == 1_000_000 - min(balances)
    assert render(journal, tmp_path / "ledger.png", now=end).stat().st_size > 10_000
