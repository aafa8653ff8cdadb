"""Two processes scan one wallet at once (the earnings job and `selfpub wallet scan` by hand, or two
daemons on one PostgreSQL) while tips keep arriving on anvil: every tip is booked once, and no scan fails."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import select

from ledger.journal import TIPS, WALLET, Journal
from tests.wallet.conftest import AnvilToken, wallet_settings
from wallet.models import CountedLog

pytestmark = pytest.mark.integration
COUNTED = CountedLog.__table__


def scan_many(db_url: str, node_url: str, chain_id: int, token: str, agent: str, start_block: int, rounds: int) -> int:
    """Scan `rounds` times in narrow ranges (many transactions to interleave); returns the logs booked."""
    from web3 import Web3

    from kernel.db import make_engine
    from wallet import ChainWallet

    engine = make_engine(db_url)
    settings = wallet_settings(mode="evm", rpc_url=node_url, chain_id=chain_id, token_address=token, address=agent,
                               scan_block_range=2)
    w3 = Web3(Web3.HTTPProvider(node_url, request_kwargs={"timeout": 10}))
    wallet = ChainWallet(w3, Journal(engine), settings, token=token, address=agent, start_block=start_block)
    booked = 0
    for _ in range(rounds):
        booked += wallet.scan().counted
    engine.dispose()
    return booked


def test_two_processes_scanning_at_once_book_each_tip_once(anvil_token: AnvilToken, db_url: str, journal: Journal) -> None:
    tok = anvil_token
    for _ in range(4):
        tok.tip(100_000)
        tok.mine(3)
    args = (db_url, tok.node.url, tok.node.chain_id, tok.address, tok.agent, tok.start_block, 12)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        scans = [pool.apply_async(scan_many, args) for _ in range(2)]
        for _ in range(6):  # tips land while both scan
            tok.tip(100_000)
            tok.mine(2)
        booked = [s.get(timeout=120) for s in scans]  # re-raises a scan's exception here
    booked.append(tok.wallet(journal).scan().counted)
    assert sum(booked) == 10
    assert journal.balance(WALLET) == 1_000_000 and journal.balance(TIPS) == -1_000_000
    with journal.engine.connect() as conn:
        assert conn.execute(select(COUNTED.c.status)).scalars().all() == ["counted"] * 10
    assert journal.verify() == []
