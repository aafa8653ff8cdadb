"""Issue 11, settlement: scenarios 2, 3 and 16 on a real anvil, each as the user would meet it.

2  after a crash following the send, a node a block behind answers "not found" for our mined payment
   while the nonce shows used: the payment stays ours (pending), nothing is paid again.
3  a payment is booked only `wallet.confirmations` deep; reorged out, its booking is reversed and the
   very same signed transaction is sent again and booked once more.
16 JSON-RPC error replies (no gas money, nonce too low, server errors, rate limits) come out
   classified, never as bugs that would stop the daemon.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from web3 import Web3
from web3.providers.base import BaseProvider

from daemon.wiring import error_policy
from ledger.journal import WALLET, Journal, provider_account
from tests.peers.anvil import rpc_call
from tests.wallet.conftest import AnvilToken
from tests.wallet.test_wallet_settlement import Crash, owe, payments
from wallet.errors import InsufficientGas, PaymentRefused, RpcErrorReply, RpcLimited, TransactionRejected, WalletError
from wallet.models import Payment
from wallet.paychain import Web3PayChain
from wallet.settlement import Settler

pytestmark = pytest.mark.integration
PAYMENT = Payment.__table__


class BehindOnLookups(Web3.HTTPProvider):
    """anvil, but the transaction and receipt look-ups come from a node a block behind: "not found" for `hidden`."""

    def __init__(self, url: str, hidden: set[str]):
        super().__init__(url, request_kwargs={"timeout": 10})
        self.hidden = hidden

    def make_request(self, method: Any, params: Any) -> Any:  # noqa: ANN401
        if method in ("eth_getTransactionReceipt", "eth_getTransactionByHash") and str(params[0]).lower() in self.hidden:
            return {"jsonrpc": "2.0", "id": 1, "result": None}
        return super().make_request(method, params)


def crash_after_send(journal: Journal, token: AnvilToken, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Any:
    """A settle that dies right after the node took the payment; returns its payment row."""
    def die(self, key: str) -> None:  # noqa: ANN001
        raise Crash(key)

    monkeypatch.setattr(Settler, "_after_send", die)
    with pytest.raises(Crash):
        token.wallet(journal, **overrides).settle()
    monkeypatch.undo()
    (row,) = payments(journal)
    return row


def test_scenario_2_a_node_behind_never_makes_our_mined_payment_failed(
    anvil_token: AnvilToken, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    anvil_token.mint(anvil_token.agent, 50_000_000)
    owe(journal, "cloud", 3_000_000, "c1")
    row = crash_after_send(journal, anvil_token, monkeypatch)
    assert row.status == "sent" and anvil_token.balance_of(anvil_token.payee) == anvil_token.units(3_000_000)

    behind = Web3(BehindOnLookups(anvil_token.node.url, {row.tx_hash.lower()}))
    for _ in range(2):  # the restarted process asks, twice, a node that cannot see the block yet
        restarted = anvil_token.wallet(journal, w3=behind)
        restarted.receipt_timeout = 0.3  # the wait for a receipt that this node will not serve
        report = restarted.settle()
        assert report.paid == () and [r.reason for r in report.refused] == ["pending"]
        assert "our transaction" in str(report.refused[0])  # the block that used the nonce holds it
        (still,) = payments(journal)
        assert still.status == "sent"  # never "failed" on a miss
    assert anvil_token.balance_of(anvil_token.payee) == anvil_token.units(3_000_000)  # not paid again

    caught_up = anvil_token.wallet(journal).settle()
    assert [p.status for p in caught_up.recovered] == ["confirmed"] and caught_up.paid == ()
    assert anvil_token.balance_of(anvil_token.payee) == anvil_token.units(3_000_000)
    assert journal.balance(provider_account("cloud")) == 0


def test_scenario_3_booked_only_when_confirmed_and_reversed_when_reorged_out(anvil_token: AnvilToken, journal: Journal) -> None:
    anvil_token.mint(anvil_token.agent, 50_000_000)
    wallet = anvil_token.wallet(journal, confirmations=2)
    wallet.receipt_timeout = 0.3
    wallet.scan()
    owe(journal, "cloud", 4_000_000, "c1")

    first = wallet.settle()  # mined at once (anvil automines), but not 2 blocks deep
    (paid,) = first.paid
    assert paid.status == "mined" and [r.reason for r in first.refused] == ["pending"]
    assert journal.balance(provider_account("cloud")) == -4_000_000  # not booked yet
    anvil_token.mine(1)
    assert wallet.settle().paid == () and journal.balance(provider_account("cloud")) == -4_000_000
    anvil_token.mine(1)
    (booked,) = wallet.settle().recovered
    assert booked.status == "confirmed" and journal.balance(provider_account("cloud")) == 0
    (row,) = payments(journal)

    # The payment's block and the two on top are replaced by empty blocks: the transfer is gone.
    rpc_call(anvil_token.node.url, "anvil_reorg", [3, []])
    assert anvil_token.balance_of(anvil_token.payee) == 0
    again = wallet.settle()
    assert [p.status for p in again.recovered] == ["mined"] and again.paid == ()  # reversed, re-sent, mined anew
    assert journal.balance(provider_account("cloud")) == -4_000_000
    reversal = journal.find(f"reorg:{row.idempotency_key}")
    assert reversal is not None
    (resent,) = payments(journal)
    assert resent.tx_hash == row.tx_hash and resent.nonce == row.nonce  # the same signed bytes

    anvil_token.mine(2)
    (rebooked,) = wallet.settle().recovered
    assert rebooked.status == "confirmed"
    assert journal.find(f"{row.idempotency_key}:1") is not None  # booked again under its next key
    assert anvil_token.balance_of(anvil_token.payee) == anvil_token.units(4_000_000)  # paid once on the chain
    assert journal.balance(provider_account("cloud")) == 0
    wallet.scan()  # the funding, now deep enough for the scanner
    assert wallet.reconcile().drift_ucr == 0 and journal.verify() == []


def test_scenario_3_a_node_behind_the_payment_block_is_not_a_reorg(anvil_token: AnvilToken, journal: Journal) -> None:
    anvil_token.mint(anvil_token.agent, 50_000_000)
    wallet = anvil_token.wallet(journal)
    owe(journal, "cloud", 2_000_000, "c1")
    (paid,) = wallet.settle().paid
    assert paid.status == "confirmed"
    snapshot_head = int(anvil_token.w3.eth.block_number)

    class Behind(Web3.HTTPProvider):
        def make_request(self, method: Any, params: Any) -> Any:  # noqa: ANN401
            if method == "eth_blockNumber":
                return {"jsonrpc": "2.0", "id": 1, "result": hex(snapshot_head - 1)}
            return super().make_request(method, params)

    assert anvil_token.wallet(journal, w3=Web3(Behind(anvil_token.node.url))).settle().recovered == ()
    assert journal.balance(provider_account("cloud")) == 0 and payments(journal)[0].status == "confirmed"


# -- scenario 16 ---------------------------------------------------------------------------------------


def test_scenario_16_no_gas_money_pauses_settlement_and_the_daemon_runs_on(anvil_token: AnvilToken, journal: Journal) -> None:
    anvil_token.mint(anvil_token.agent, 50_000_000)
    wallet = anvil_token.wallet(journal)
    owe(journal, "cloud", 2_000_000, "c1")
    rpc_call(anvil_token.node.url, "anvil_setBalance", [anvil_token.agent, "0x0"])
    with pytest.raises(WalletError) as err:
        wallet.settle()
    assert isinstance(err.value, InsufficientGas) and err.value.reason == "insufficient_gas"
    assert "native coin" in str(err.value)
    assert error_policy().classify(err.value) == "permanent"  # recorded; the daemon does not exit
    assert payments(journal) == [] and anvil_token.balance_of(anvil_token.payee) == 0

    rpc_call(anvil_token.node.url, "anvil_setBalance", [anvil_token.agent, hex(10**19)])
    (paid,) = wallet.settle().paid
    assert paid.status == "confirmed" and anvil_token.balance_of(anvil_token.payee) == anvil_token.units(2_000_000)


def test_scenario_16_a_refused_rebroadcast_goes_through_recovery(
    anvil_token: AnvilToken, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    anvil_token.mint(anvil_token.agent, 50_000_000)
    owe(journal, "cloud", 3_000_000, "c1")
    row = crash_after_send(journal, anvil_token, monkeypatch)
    chain = Web3PayChain(anvil_token.w3, anvil_token.address)
    with pytest.raises(TransactionRejected) as err:  # the node's answer to a mined transaction sent again
        chain.send_raw(bytes.fromhex(row.raw_tx.removeprefix("0x")))
    assert err.value.code is not None and error_policy().classify(err.value) == "permanent"
    report = anvil_token.wallet(journal).settle()  # the refusal decides nothing; the receipt does
    assert [p.status for p in report.recovered] == ["confirmed"] and report.paid == ()
    assert anvil_token.balance_of(anvil_token.payee) == anvil_token.units(3_000_000)


class ErrorNode(BaseProvider):
    """A node that answers every call with one JSON-RPC error object."""

    def __init__(self, code: int, message: str):
        super().__init__()
        self.code, self.message = code, message

    def make_request(self, method: Any, params: Any) -> Any:  # noqa: ANN401
        return {"jsonrpc": "2.0", "id": 1, "error": {"code": self.code, "message": self.message}}

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


@pytest.mark.parametrize(("code", "kind"), [(-32000, RpcErrorReply), (-32005, RpcLimited), (-32603, RpcErrorReply)])
def test_scenario_16_json_rpc_error_replies_are_retried_later(
    anvil_token: AnvilToken, sqlite_journal: Journal, code: int, kind: type
) -> None:
    wallet = anvil_token.wallet(sqlite_journal, w3=Web3(ErrorNode(code, "server error")))
    with pytest.raises(WalletError) as err:
        wallet.settle()
    assert type(err.value) is kind and err.value.code == code
    assert error_policy().classify(err.value) == "retryable"
    assert wallet.status().stale or wallet.status().last_error  # recorded as a chain failure


def test_payment_refusals_are_permanent_for_the_daemon() -> None:
    for exc in (PaymentRefused("daily_cap", "x"), InsufficientGas(0, 1, "0x0"), TransactionRejected(-32000, "nonce too low")):
        assert error_policy().classify(exc) == "permanent"
