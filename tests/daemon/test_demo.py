"""`selfpub demo` end to end: the embedded model and chain, pause below min_balance, a tip on chain, resume,
and the posts on a local Bluesky PDS (the Node peer, installed by tests/peers/setup.sh when missing)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from config import Settings
from kernel.db import make_engine
from daemon.demo import run_demo
from daemon.demo.inference import PAID_CALL
from daemon.demo.localpds import find_pds
from daemon.demo.loop import BSKY_HANDLE, BSKY_PASSWORD_FILE, TIP, demo_settings, start_bluesky
from ledger import Journal
from ledger.accounts import reads_account
from ledger.budget import Budget
from ledger.plot import story
from ledger.reads import PAUSE, RESUME, TIP as TIP_EVENT, paid_over_x402, x402_payments_open
from tests.peers.pds import PEER_DIR, ensure_installed

pytestmark = [pytest.mark.integration, pytest.mark.real_llm, pytest.mark.timeout(900)]


def _pds_records(url: str, did: str) -> dict[str, dict]:
    """Every app.bsky.feed.post record of `did` on the PDS, by URI (read back independently of the demo)."""
    resp = httpx.get(f"{url}/xrpc/com.atproto.repo.listRecords",
                     params={"repo": did, "collection": "app.bsky.feed.post", "limit": 100}, timeout=30)
    resp.raise_for_status()
    return {r["uri"]: r["value"] for r in resp.json()["records"]}


# The demo keeps the real review gate on a 135M model, whose drafts vary from run to run (llama.cpp is not
# bit-reproducible under load), so some drafts are rejected with their reasons. Measured on fresh `selfpub demo`
# runs, one at a time (issue 14.5): before its part A 1 of 2 told the whole story (the other: every writer reply
# cut off, and a balance stuck between the pause threshold and one item's worst case); after it 4 of 5 with at
# most 3 cycles after the resume (the fifth: 5 drafts rejected), then 5 of 5 with at most 5 (128-201 s a run,
# 12 of 20 drafts approved). One fresh run must tell the whole story; it is asserted in full.
DEMO_TRIES = 1


async def test_demo_pauses_when_broke_and_resumes_after_a_tip_on_chain(tmp_path_factory: pytest.TempPathFactory) -> None:
    ensure_installed()  # the Node peer: build/node/pds
    told: list[str] = []
    for _ in range(DEMO_TRIES):
        tmp_path = tmp_path_factory.mktemp("demo-run")
        console = Console(file=(tmp_path / "demo.out").open("w"), width=120)
        result = await run_demo(tmp_path / "demo", console, pds_dir=PEER_DIR, keep_pds=True)
        try:
            assert result.pds is not None, result.bluesky_skipped
            records = _pds_records(result.pds.url, result.pds_did)
        finally:
            if result.pds is not None:
                result.pds.stop()
        if result.paused_reason and result.resumed and result.published > 0:
            break
        told.append(f"paused={result.paused_reason!r} resumed={result.resumed} published={result.published}")
    else:
        pytest.fail(f"no demo run of {DEMO_TRIES} paused, resumed and published: {told}")

    assert result.cycles, "no cycle ran"
    assert result.paused_reason.startswith("available "), result.paused_reason
    assert result.resumed
    assert result.chart is not None and result.chart.stat().st_size > 10_000
    posts = sorted(result.outbox.glob("*.md")) if result.outbox.exists() else []
    assert len(posts) == result.published

    # every published post is also a record on the local PDS, and the summary names them
    assert result.published > 0 and result.bluesky_skipped == ""
    assert len(result.bluesky_uris) == result.published
    assert set(result.bluesky_uris) <= set(records), (result.bluesky_uris, list(records))
    assert all(uri.startswith(f"at://{result.pds_did}/app.bsky.feed.post/") for uri in result.bluesky_uris)
    assert all(records[uri]["text"].strip() for uri in result.bluesky_uris)
    secret = tmp_path / "demo" / "state" / BSKY_PASSWORD_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    password = secret.read_text()

    journal = Journal(make_engine(f"sqlite:///{tmp_path / 'demo' / 'state' / 'selfpub.db'}"))
    assert journal.verify() == []
    assert -journal.balance("income:tips") == int(TIP.replace(".", "")) * 10_000  # 0.60 credits
    # ledger.png marks what the console's chart marks (ledger.reads.money_story): the pause, the tip, the resume
    _, events = story(journal, budget=demo_settings(tmp_path / "demo", "http://127.0.0.1:9/feed.xml").budget)
    kinds = [e.kind for e in events]
    assert {PAUSE, TIP_EVENT, RESUME} <= set(kinds), kinds
    assert kinds.index(PAUSE) < kinds.index(TIP_EVENT) < kinds.index(RESUME), kinds
    assert Budget(journal, Settings().budget, persona="demo").open_reservations() == 0
    spend = journal.balance("expenses:compute")
    assert spend > 0 and result.report_json["spend"]["total"] == spend
    assert result.report_json["income"]["tips"] == -journal.balance("income:tips")
    # a machine reader bought each published article's Markdown and brief over x402 (daemon/demo/reader.py)
    assert result.reads_paid == 2 * result.published
    assert result.reads_income == result.published * (50_000 + 20_000)
    text = (tmp_path / "demo.out").read_text()
    assert -journal.balance(reads_account("article")) == result.published * 50_000
    # [x402] is on in the demo's settings: the report shows the reads and the break-even, not "paid reads are off"
    assert result.reads_paid > 0
    reads = result.report_json["reads"]
    assert reads["count"] == result.reads_paid and reads["credits"] == result.reads_income, reads
    assert reads["by_kind"] and reads["break_even"]["price"] == 50_000, reads
    assert reads["break_even"]["reads"] is not None, reads["break_even"]
    # the sustain tier in force, printed at the start, after the pause and after the reads
    assert [when for when, _ in result.tiers] == ["at the start", "after the pause", "after the reads"]
    for when, tier in result.tiers:
        assert f"sustain tier {when}: {tier}:" in text, (when, tier)
    assert result.report_json["sustain"]["tier"] == result.tiers[-1][1]
    # every model call was paid over x402 from the wallet (daemon/demo/inference.py): exact PAID_CALL each,
    # settled on chain, booked as expenses:compute:<agent> against assets:wallet, nothing owed to the provider
    # A call the endpoint answers with an error (the embedded server's 400 to an over-long repair prompt, seen under
    # load) is not settled by the middleware: its payment stays booked at its price, without a tx, until reconcile
    # voids it; never paid twice, never unbooked.
    calls = x402_payments_open(journal)
    settled = [c for c in calls if c.tx_hash]
    assert result.inference_calls == len(calls) > 0 and settled
    assert all(c.amount == PAID_CALL for c in calls), calls
    assert result.inference_paid == len(calls) * PAID_CALL == paid_over_x402(journal, datetime(2000, 1, 1, tzinfo=UTC))
    assert journal.balance("liabilities") == 0
    assert sum(result.report_json["spend"]["by_agent"].values()) == spend
    assert f"paid inference calls {len(calls)} ({len(settled)} settled on chain)" in text
    assert "PAUSED" in text and "RESUMED" in text and "a machine reader pays per read" in text
    assert f"account {BSKY_HANDLE}" in text and all(uri in text for uri in result.bluesky_uris)
    assert password not in text  # the app password never reaches the output


def test_demo_says_bluesky_is_skipped_when_the_node_peer_is_not_installed(tmp_path: Path) -> None:
    console = Console(file=(tmp_path / "out").open("w"), width=200)
    empty = tmp_path / "no-peer"
    empty.mkdir()
    assert find_pds(empty) is None
    reason = start_bluesky(empty, tmp_path, tmp_path, console)
    assert isinstance(reason, str) and "not installed" in reason and str(empty) in reason and "make peers" in reason
    assert not (tmp_path / BSKY_PASSWORD_FILE).exists()
