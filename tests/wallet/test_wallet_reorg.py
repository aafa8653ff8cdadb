"""Reorgs on a real node (anvil_reorg): a counted transfer that disappears is reversed."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlalchemy import select

from ledger.journal import TIPS, WALLET, Journal
from tests.peers.anvil import rpc_call
from tests.wallet.conftest import AnvilToken
from wallet.chain import token_contract
from wallet.models import CountedLog

pytestmark = pytest.mark.integration
COUNTED = CountedLog.__table__


def counted_rows(journal: Journal) -> list:
    with journal.engine.connect() as conn:
        return conn.execute(select(COUNTED).order_by(COUNTED.c.id)).all()


def test_a_reorg_that_drops_a_counted_tip_is_reversed(anvil_token: AnvilToken, journal: Journal) -> None:
    wallet = anvil_token.wallet(journal, confirmations=1)
    anvil_token.tip(2_000_000)
    anvil_token.mine(1)
    assert wallet.scan().counted == 1
    assert journal.balance(WALLET) == 2_000_000

    rpc_call(anvil_token.node.url, "anvil_reorg", [2, []])  # the tip's block and the one on top: replaced, empty
    r = wallet.scan()
    assert r.reversed == 1 and r.counted == 0
    assert journal.balance(WALLET) == 0 and journal.balance(TIPS) == 0
    row = counted_rows(journal)[0]
    assert row.status == "reversed" and row.reversal_txn_id is not None
    # a rescan does not reverse twice, and the reconciliation agrees with the chain
    assert wallet.scan().reversed == 0
    assert wallet.reconcile().drift_ucr == 0


def test_a_tip_moved_to_another_block_by_a_reorg_counts_once(anvil_token: AnvilToken, journal: Journal) -> None:
    w3 = anvil_token.w3
    wallet = anvil_token.wallet(journal, confirmations=1)
    tx_hash = anvil_token.tip(1_000_000)
    anvil_token.mine(1)
    wallet.scan()
    tx = w3.eth.get_transaction(tx_hash)
    request = {
        "from": anvil_token.funder, "to": anvil_token.address, "data": tx["input"].to_0x_hex(),
        "nonce": hex(tx["nonce"]), "gas": hex(tx["gas"]),
    }
    rpc_call(anvil_token.node.url, "anvil_reorg", [2, [[request, 1]]])  # re-included one block later
    anvil_token.mine(1)
    r = wallet.scan()
    assert (r.reversed, r.counted) == (1, 1)
    assert journal.balance(WALLET) == 1_000_000
    live = [row for row in counted_rows(journal) if row.status == "counted"]
    assert len(live) == 1 and live[0].block_number > tx["blockNumber"]
    assert wallet.reconcile().drift_ucr == 0


def test_a_reorg_below_the_cursor_that_adds_a_transfer_is_found(anvil_token: AnvilToken, sqlite_journal: Journal) -> None:
    wallet = anvil_token.wallet(sqlite_journal, confirmations=0)
    anvil_token.mine(3)
    wallet.scan()
    assert sqlite_journal.balance(WALLET) == 0
    data = token_contract(anvil_token.w3, anvil_token.address).encode_abi(
        "transfer", [anvil_token.agent, anvil_token.units(500_000)]
    )
    request = {"from": anvil_token.funder, "to": anvil_token.address, "data": data}
    rpc_call(anvil_token.node.url, "anvil_reorg", [2, [[request, 0]]])  # same height, new block with a tip
    r = wallet.scan()
    assert r.counted == 1 and sqlite_journal.balance(WALLET) == 500_000



def test_scenario_4_a_reorged_tip_whose_block_comes_back_counts_once(anvil_token: AnvilToken, journal: Journal) -> None:
    """Fork A (with the tip) -> fork B (without) -> fork A again, with block for block the same hashes."""
    tok, url, w3 = anvil_token, anvil_token.node.url, anvil_token.w3
    wallet = tok.wallet(journal, confirmations=1)
    parent = w3.eth.get_block("latest")
    data = token_contract(w3, tok.address).encode_abi("transfer", [tok.agent, tok.units(2_000_000)])
    raw = Account.from_key(tok.node.keys[0]).sign_transaction({
        "to": tok.address, "data": data, "nonce": w3.eth.get_transaction_count(tok.funder), "gas": 100_000,
        "gasPrice": 2 * 10**9, "chainId": tok.node.chain_id,
    }).raw_transaction.to_0x_hex()

    def fork(tip: bool, offset: int) -> list[str]:
        """Two blocks on the fork point at fixed times and base fee: the same inputs make the same blocks."""
        for i in (1, 2):
            rpc_call(url, "evm_setNextBlockTimestamp", [hex(parent["timestamp"] + offset + 10 * i)])
            rpc_call(url, "anvil_setNextBlockBaseFeePerGas", [hex(10**9)])
            if tip and i == 1:
                w3.eth.wait_for_transaction_receipt(rpc_call(url, "eth_sendRawTransaction", [raw]))
            else:
                rpc_call(url, "evm_mine")
        return [w3.eth.get_block(parent["number"] + i)["hash"].to_0x_hex() for i in (1, 2)]

    fork_point = rpc_call(url, "evm_snapshot")
    fork_a = fork(True, 0)
    assert wallet.scan().counted == 1

    assert rpc_call(url, "evm_revert", [fork_point])
    fork_point = rpc_call(url, "evm_snapshot")
    fork_b = fork(False, 1)
    assert fork_b[0] != fork_a[0]
    assert wallet.scan().reversed == 1
    assert journal.balance(WALLET) == 0

    assert rpc_call(url, "evm_revert", [fork_point])
    assert fork(True, 0) == fork_a  # fork A is canonical again: the tip back in its very block
    r = wallet.scan()
    assert (r.counted, r.counted_ucr) == (1, 2_000_000)
    assert journal.balance(WALLET) == 2_000_000 and journal.balance(TIPS) == -2_000_000
    (row,) = counted_rows(journal)
    assert (row.status, row.block_hash) == ("counted", fork_a[0])
    assert wallet.scan().counted == 0  # and it stays counted once
    assert wallet.reconcile().drift_ucr == 0
