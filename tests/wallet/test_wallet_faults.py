"""RPC down or timing out: a clear error, the ledger goes on, stale and too-stale detectable; wrong chain refused."""

from __future__ import annotations

import socket
import threading
from datetime import datetime, timedelta, timezone

import pytest
from web3 import Web3

from config.settings import BudgetSettings
from ledger.budget import Budget
from ledger.funding import deposit
from ledger.journal import WALLET, Journal
from tests.peers.anvil import free_port, rpc_call
from tests.wallet.conftest import AnvilToken, wallet_settings
from wallet import ChainMismatch, ChainWallet, RpcUnavailable

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
AGENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


def down_wallet(journal: Journal, url: str, clock: Clock, timeout: int = 1) -> ChainWallet:
    settings = wallet_settings(
        mode="evm", rpc_url=url, chain_id=31337, token_address=TOKEN, address=AGENT,
        rpc_timeout_seconds=timeout, stale_after_seconds=60, max_staleness_seconds=3600,
    )
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None))
    return ChainWallet(w3, journal, settings, token=TOKEN, address=AGENT, clock=clock)


def test_a_node_that_is_down_raises_rpc_unavailable_and_the_ledger_goes_on(sqlite_journal: Journal) -> None:
    clock = Clock()
    wallet = down_wallet(sqlite_journal, f"http://127.0.0.1:{free_port()}", clock)
    with pytest.raises(RpcUnavailable) as err:
        wallet.scan()
    assert err.value.operation == "chain_id"
    status = wallet.status()
    assert status.stale and not status.too_stale and "chain_id" in status.last_error
    deposit(sqlite_journal, 5_000_000)  # the ledger still works
    assert Budget(sqlite_journal, BudgetSettings()).snapshot().wallet == 5_000_000


def test_a_node_that_never_answers_times_out_with_rpc_unavailable(sqlite_journal: Journal) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # accept, read nothing, answer nothing
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        wallet = down_wallet(sqlite_journal, f"http://127.0.0.1:{server.getsockname()[1]}", Clock(), timeout=1)
        with pytest.raises(RpcUnavailable) as err:
            wallet.balance()
        assert err.value.cause in ("ReadTimeout", "Timeout", "ConnectTimeout")
    finally:
        stop.set()
        thread.join()
        for s in held:
            s.close()
        server.close()


def test_staleness_past_the_limit_pauses_the_budget(sqlite_journal: Journal) -> None:
    clock = Clock()
    wallet = down_wallet(sqlite_journal, f"http://127.0.0.1:{free_port()}", clock)
    deposit(sqlite_journal, 50_000_000)
    with pytest.raises(RpcUnavailable):
        wallet.balance()
    assert wallet.pause_reason() is None
    clock.now += timedelta(seconds=3601)
    with pytest.raises(RpcUnavailable):
        wallet.balance()
    assert wallet.is_too_stale()
    budget = Budget(sqlite_journal, BudgetSettings())
    state = budget.evaluate(extra_reason=wallet.pause_reason())
    assert state.paused and "too stale" in state.reason


def test_staleness_is_measured_from_the_last_successful_sync(anvil_token: AnvilToken, sqlite_journal: Journal) -> None:
    clock = Clock()
    wallet = anvil_token.wallet(sqlite_journal)
    wallet.clock = clock
    wallet.scan()
    fresh = wallet.status()
    assert not fresh.stale and fresh.last_sync_at == clock.now
    clock.now += timedelta(seconds=wallet.settings.stale_after_seconds + 1)
    assert wallet.status().stale and not wallet.is_too_stale()
    clock.now += timedelta(seconds=wallet.settings.max_staleness_seconds)
    assert wallet.is_too_stale()
    wallet.scan()  # the node answers again
    assert not wallet.is_too_stale() and wallet.pause_reason() is None


def test_a_wrong_chain_id_is_refused(anvil_token: AnvilToken, sqlite_journal: Journal) -> None:
    wallet = anvil_token.wallet(sqlite_journal, chain_id=1)
    with pytest.raises(ChainMismatch) as err:
        wallet.scan()
    assert (err.value.expected, err.value.actual) == (1, anvil_token.node.chain_id)
    assert "wallet.chain_id" in str(err.value)


def test_a_node_stuck_behind_our_cursor_grows_stale_and_pauses(anvil_token: AnvilToken, sqlite_journal: Journal) -> None:
    """A node that answers but is behind is not a fresh sync: stuck there, it must pause the loop (scenario 5)."""
    clock = Clock()
    wallet = anvil_token.wallet(sqlite_journal, confirmations=0)
    wallet.clock = clock
    snapshot = rpc_call(anvil_token.node.url, "evm_snapshot")
    anvil_token.tip(1_000_000)
    anvil_token.mine(3)
    assert wallet.scan().counted == 1
    rpc_call(anvil_token.node.url, "evm_revert", [snapshot])  # the node now answers from below our cursor
    try:
        r = wallet.scan()
        assert r.behind and r.reversed == 0 and sqlite_journal.balance(WALLET) == 1_000_000
        assert wallet.status().last_sync_at == clock.now and "behind" in wallet.status().last_error
        clock.now += timedelta(seconds=wallet.settings.max_staleness_seconds + 1)
        assert wallet.scan().behind
        assert wallet.is_too_stale() and wallet.pause_reason() is not None
    finally:
        anvil_token.mine(5)  # leave the shared node ahead again
