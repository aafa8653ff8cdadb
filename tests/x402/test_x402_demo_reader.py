"""The demo's machine reader (daemon/demo/reader.py) on the embedded chain: it buys every published article's
Markdown and brief through the SDK's client, and the wallet books them as income:reads with the article's task."""

from __future__ import annotations

from pathlib import Path

from agents.tasks import post_key
from daemon.demo.reader import sell_reads
from ledger.accounts import reads_account
from ledger.journal import Journal
from ledger.reads import task_outcomes
from tests.website.conftest import ARTICLES, make_state
from wallet import ChainWallet
from wallet.embedded import EmbeddedChain


async def test_the_demo_reader_buys_the_published_articles_and_the_wallet_books_them(tmp_path: Path) -> None:
    state = await make_state(tmp_path)
    settings = state.settings.model_copy(update={"wallet": state.settings.wallet.model_copy(
        update={"mode": "embedded", "confirmations": 0})})
    chain = EmbeddedChain.start()
    journal = Journal(state.engine)
    wallet = ChainWallet(chain.w3, journal, settings.wallet, token=chain.token_address, address=chain.agent,
                         signer=chain.agent_signer, mode="embedded", embedded=chain)

    sold = await sell_reads(settings, state.engine, chain, wallet)

    assert len(sold.requests) == 2 * len(ARTICLES) and sold.paid == 2 * len(ARTICLES), sold.requests
    assert sold.booked_ucr == len(ARTICLES) * (50_000 + 20_000)
    assert -journal.balance(reads_account("article")) == len(ARTICLES) * 50_000
    task_id = state.task_ids[ARTICLES[0][0]]
    assert task_outcomes(journal, [(task_id, [post_key(task_id)])])[task_id] == (ARTICLES[0][2], 70_000)
    state.engine.dispose()
