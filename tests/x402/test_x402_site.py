"""`selfpub run`'s site sells its articles: daemon/paid_reads.py builds the paywall from settings around the real
website (website/ knows nothing of payments), on anvil with CreditToken3009 and the SDK's facilitator signing
with its own keystore; the SDK's paying httpx client over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from pydantic import SecretStr
from x402.http.clients.httpx import x402HttpxClient

from agents.tasks import post_key
from config.settings import WalletSettings, X402SignerSettings, X402Settings
from daemon.paid_reads import paid_reads_middleware
from daemon.site import build_site
from ledger.accounts import reads_account
from ledger.journal import Journal
from ledger.reads import task_outcomes
from payments.x402 import PATTERNS, PaymentsError, TermsError, x402_pattern
from tests.peers.x402 import X402Peer
from tests.website.conftest import ARTICLES, PublishedState, base_url, make_state
from wallet.reads import PaidReads
from wallet.scanner import TipScanner
from website import SiteServer
from website.routes import PAID_PATHS

TITLE = ARTICLES[0][0]


def test_the_paid_patterns_are_the_sites_paid_paths() -> None:
    assert {kind: x402_pattern(path) for kind, path in PAID_PATHS.items()} == PATTERNS


def paid_settings(state: PublishedState, peer: X402Peer, root: Path, **x402):  # noqa: ANN003, ANN201
    keystore = root / "facilitator.keystore"
    keystore.write_text(json.dumps(Account.encrypt(peer.facilitator_key, "pw", kdf="pbkdf2", iterations=1000)))
    keystore.chmod(0o600)
    wallet = WalletSettings(mode="evm", rpc_url=peer.node.url, chain_id=peer.node.chain_id, token_address=peer.token,
                            address=peer.agent, confirmations=0)
    signer = X402SignerSettings(keystore_file=keystore, keystore_password_value=SecretStr("pw"))
    return state.settings.model_copy(update={"wallet": wallet, "x402": X402Settings(enabled=True, signer=signer, **x402)})


@pytest.fixture
async def paid_site(tmp_path: Path, x402_peer: X402Peer) -> AsyncIterator[tuple[PublishedState, SiteServer]]:
    state = await make_state(tmp_path)
    settings = paid_settings(state, x402_peer, tmp_path)
    state.settings = settings
    server = build_site(settings, state.engine, middleware=paid_reads_middleware(settings, state.engine))
    await server.start()
    try:
        yield state, server
    finally:
        await server.stop()
        state.engine.dispose()


async def test_the_site_sells_the_markdown_and_the_brief_and_shows_the_page_free(
        paid_site: tuple[PublishedState, SiteServer], x402_peer: X402Peer) -> None:
    state, server = paid_site
    slug = state.slugs[TITLE]
    url = base_url(server)
    async with httpx.AsyncClient(base_url=url) as plain:
        assert (await plain.get(f"/a/{slug}")).status_code == 200  # people read free
        unpaid = await plain.get(f"/a/{slug}.md")
        assert unpaid.status_code == 402 and "LazyCell" not in unpaid.text
        assert (await plain.get(f"/api/briefs/{slug}")).status_code == 402
        assert (await plain.head(f"/a/{slug}.md")).status_code == 402  # HEAD is no way around it
        assert unpaid.headers["x-content-type-options"] == "nosniff"  # still inside the site's Guard
    async with x402HttpxClient(x402_peer.paying_client(), base_url=url) as reader:
        article = await reader.get(f"/a/{slug}.md")
        brief = await reader.get(f"/api/briefs/{slug}")
    assert article.status_code == 200 and "LazyCell" in article.text
    assert brief.status_code == 200

    task_id = state.task_ids[TITLE]
    rows = PaidReads(state.engine).rows()
    assert [(r["kind"], r["status"], r["post_id"], r["task_id"]) for r in rows] == [
        ("article", "settled", post_key(task_id), task_id), ("brief", "settled", post_key(task_id), task_id)]

    journal = Journal(state.engine)
    TipScanner(x402_peer.w3, journal, chain_id=x402_peer.node.chain_id, token=x402_peer.token, address=x402_peer.agent,
               decimals=18, confirmations=0, block_range=1000, start_block=0).scan()
    assert -journal.balance(reads_account("article")) == 50_000 and -journal.balance(reads_account("brief")) == 20_000
    spend, income = task_outcomes(journal, [(task_id, [post_key(task_id)])])[task_id]
    assert (spend, income) == (ARTICLES[0][2], 70_000)  # the article's compute against what its reads earned


async def test_an_unknown_slug_is_not_sold(paid_site: tuple[PublishedState, SiteServer], x402_peer: X402Peer) -> None:
    _, server = paid_site
    before = x402_peer.balance_of(x402_peer.agent)
    async with x402HttpxClient(x402_peer.paying_client(), base_url=base_url(server)) as reader:
        resp = await reader.get("/a/no-such-article.md")
    assert resp.status_code == 404 and x402_peer.balance_of(x402_peer.agent) == before


async def test_paid_reads_off_add_no_middleware_and_a_ledger_wallet_is_refused(tmp_path: Path, x402_peer: X402Peer) -> None:
    state = await make_state(tmp_path)
    assert paid_reads_middleware(state.settings, state.engine) == []
    on = state.settings.model_copy(update={"x402": X402Settings(enabled=True)})
    with pytest.raises(TermsError, match="wallet.mode"):
        paid_reads_middleware(on, state.engine)
    state.engine.dispose()


async def test_a_token_that_is_no_eip3009_token_is_refused_at_start_naming_the_key(tmp_path: Path,
                                                                                  x402_peer: X402Peer) -> None:
    state = await make_state(tmp_path)
    settings = paid_settings(state, x402_peer, tmp_path, asset=x402_peer.agent)  # an account, not a token
    with pytest.raises(PaymentsError, match="x402.asset"):
        paid_reads_middleware(settings, state.engine)
    state.engine.dispose()
