"""Paid reads in `selfpub ledger report` (issue 12): their own income line per kind with a count, a `reads` key in
the JSON, and the article reads a published article needs to break even, on SQLite and the real PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from ledger import WALLET, Entry, Journal, compute_account, provider_account
from ledger.accounts import reads_account
from ledger.reads import BreakEven, ReadIncome, break_even, reads_by_kind, UnitEconomics
from ledger.reports import CSV_COLUMNS, build_report, render_table, to_csv
from tests.ledger.conftest import Clock


def _spend(journal: Journal, key: str, task: str, amount: int, when) -> None:  # noqa: ANN001
    journal.post("compute", [Entry(compute_account("writer"), amount), Entry(provider_account("x"), -amount)],
                 idempotency_key=key, task_id=task, time=when)


def _read(journal: Journal, key: str, kind: str, task: str, amount: int, when) -> int:  # noqa: ANN001
    return journal.post(f"read:{kind}", [Entry(WALLET, amount), Entry(reads_account(kind), -amount)],
                        idempotency_key=key, task_id=task, post_id=f"site:{task}", time=when).txn_id


def _ledger(journal: Journal, clock: Clock) -> None:
    t0 = clock.now
    _spend(journal, "c1", "t1", 250_000, t0 + timedelta(minutes=1))  # two articles: mean cost 300,001 ucr
    _spend(journal, "c2", "t2", 350_002, t0 + timedelta(minutes=2))
    for i in range(3):
        _read(journal, f"a{i}", "article", "t1", 20_000, t0 + timedelta(minutes=10 + i))
    _read(journal, "b0", "brief", "t2", 50_000, t0 + timedelta(minutes=20))
    reorged = _read(journal, "b1", "brief", "t2", 50_000, t0 + timedelta(minutes=21))
    journal.reverse(reorged, idempotency_key="reorg:b1", memo="reorg", time=t0 + timedelta(minutes=22))
    journal.post("tip", [Entry(WALLET, 7), Entry("income:tips", -7)], idempotency_key="tip", time=t0)
    clock.advance(hours=1)


def test_reads_are_counted_per_kind_net_of_reorg_reversals(journal: Journal, clock: Clock) -> None:
    _ledger(journal, clock)
    got = reads_by_kind(journal, since=None, until=None)
    assert got == {"article": ReadIncome(3, 60_000), "brief": ReadIncome(1, 50_000)}
    # A range that ends between a read and its reversal counts the read; one that starts after it, the reversal.
    t0 = clock.now - timedelta(hours=1)
    assert reads_by_kind(journal, since=t0, until=t0 + timedelta(minutes=21, seconds=30))["brief"] == \
        ReadIncome(2, 100_000)
    assert reads_by_kind(journal, since=t0 + timedelta(minutes=21, seconds=30), until=None) == \
        {"brief": ReadIncome(-1, -50_000)}


def test_report_has_reads_on_their_own_and_the_break_even(journal: Journal, clock: Clock, make_budget) -> None:  # noqa: ANN001
    _ledger(journal, clock)
    report = build_report(journal, make_budget(), read_price=20_000)
    data = json.loads(report.to_json())
    assert data["reads"] == {
        "count": 4, "credits": 110_000,
        "by_kind": {"article": {"count": 3, "credits": 60_000}, "brief": {"count": 1, "credits": 50_000}},
        "break_even": {"reads": 16, "price": 20_000, "reason": ""},  # ceil(300,001 / 20,000)
    }
    assert data["income"]["reads"] == {"article": 60_000, "brief": 50_000}
    assert data["income"]["other"] == {}  # no longer lumped with any other income
    assert data["income"]["total"] == 7 + 110_000 == data["income"]["tips"] + sum(data["income"]["reads"].values())
    assert data["per_article"]["cost_mean"] == 300_001

    out = io.StringIO()
    render_table(report, Console(file=out, width=160, color_system=None))
    text = out.getvalue()
    assert "reads:article (3 reads)" in text and "0.060000" in text
    assert "reads:brief (1 reads)" in text and "0.050000" in text
    assert "reads to break even per article" in text and " 16 " in text


def test_break_even_is_none_with_the_reason(journal: Journal, clock: Clock, make_budget) -> None:  # noqa: ANN001
    _ledger(journal, clock)
    off = build_report(journal, make_budget()).to_dict()["reads"]["break_even"]
    assert off == {"reads": None, "price": None, "reason": "paid reads are off (x402.enabled = false)"}
    empty = build_report(journal, make_budget(), since=clock.now, read_price=20_000).to_dict()["reads"]
    assert empty["count"] == 0 and empty["break_even"]["reads"] is None
    assert empty["break_even"]["reason"] == "nothing was published in the range"
    assert break_even(UnitEconomics(1, 10, 10, 0), 0) == \
        BreakEven(None, 0, "article reads are free (x402.price_article = 0)")
    assert break_even(UnitEconomics(1, 40_000, 40_000, 0), 20_000).reads == 2  # exact: no extra read
    assert break_even(UnitEconomics(1, 40_001, 40_001, 0), 20_000).reads == 3


def test_the_cli_report_prices_the_break_even_with_the_configured_article_read(tmp_path: Path) -> None:
    """`selfpub ledger report` hands [x402] price_article to the report, and nothing when paid reads are off."""
    from tests.x402.test_x402_startup import paid_config

    paid = paid_config(tmp_path, "secrets/keystore.json")  # the chain is down: the report never asks it
    paid.write_text(paid.read_text().replace("[x402]\nenabled = true\n", '[x402]\nenabled = true\nprice_article = "0.04"\n'))
    data = json.loads(_cli(paid, "ledger", "report", "--format", "json").stdout)
    assert data["reads"]["break_even"] == {"reads": None, "price": 40_000, "reason": "nothing was published in the range"}
    off = paid.with_name("off.toml")
    off.write_text(paid.read_text().replace("[x402]\nenabled = true\n", "[x402]\nenabled = false\n"))
    data = json.loads(_cli(off, "ledger", "report", "--format", "json").stdout)
    assert data["reads"]["break_even"]["price"] is None and "x402.enabled" in data["reads"]["break_even"]["reason"]


def _cli(config: Path, *args: str):  # noqa: ANN202 - click's Result
    from typer.testing import CliRunner

    from daemon.cli import app

    result = CliRunner().invoke(app, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_csv_has_reads_in_their_own_column_not_in_other_income(journal: Journal, clock: Clock, make_budget) -> None:  # noqa: ANN001
    _ledger(journal, clock)
    journal.post("grant", [Entry(WALLET, 3), Entry("income:grants", -3)], idempotency_key="grant",
                 time=clock.now - timedelta(minutes=30))
    text = to_csv(build_report(journal, make_budget(), by="day"))
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert CSV_COLUMNS[:10] == ("start", "end", "spend", "income", "tips", "engagement", "other_income", "deposits",
                                "net", "balance") and CSV_COLUMNS[-1] == "reads"  # appended: the others stay put
    [row] = [r for r in csv.DictReader(io.StringIO(text)) if r["income"] != "0.000000"]
    assert row["reads"] == "0.110000"  # 3 article reads + 2 brief reads - the reorged one
    assert row["other_income"] == "0.000003" and row["tips"] == "0.000007"
    assert row["income"] == "0.110010"  # tips + other_income + reads
