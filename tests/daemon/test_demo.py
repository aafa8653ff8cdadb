"""`selfpub demo` end to end: the embedded model and chain, pause below min_balance, a tip on chain, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from config import Settings
from config.db import make_engine
from daemon.demo import TIP, run_demo
from ledger import Journal
from ledger.budget import Budget

pytestmark = [pytest.mark.integration, pytest.mark.real_llm, pytest.mark.timeout(900)]


async def test_demo_pauses_when_broke_and_resumes_after_a_tip_on_chain(tmp_path: Path) -> None:
    console = Console(file=(tmp_path / "demo.out").open("w"), width=120)
    result = await run_demo(tmp_path / "demo", console)

    assert result.cycles, "no cycle ran"
    assert result.paused_reason.startswith("available "), result.paused_reason
    assert result.resumed
    assert result.chart is not None and result.chart.stat().st_size > 10_000
    posts = sorted(result.outbox.glob("*.md")) if result.outbox.exists() else []
    assert len(posts) == result.published

    journal = Journal(make_engine(f"sqlite:///{tmp_path / 'demo' / 'state' / 'selfpub.db'}"))
    assert journal.verify() == []
    assert -journal.balance("income:tips") == int(TIP.replace(".", "")) * 10_000  # 0.60 credits
    assert Budget(journal, Settings().budget, persona="demo").open_reservations() == 0
    spend = journal.balance("expenses:compute")
    assert spend > 0 and result.report_json["spend"]["total"] == spend
    assert result.report_json["income"]["tips"] == -journal.balance("income:tips")
    text = (tmp_path / "demo.out").read_text()
    assert "PAUSED" in text and "RESUMED" in text
