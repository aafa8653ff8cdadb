"""Settlement crash points: a crash before signing leaves no nonce gap; a slow receipt leaves the payment to recover."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from ledger.journal import Journal, provider_account
from tests.wallet.conftest import embedded_wallet
from tests.wallet.test_wallet_settlement import Crash, owe, payments
from wallet.embedded import EmbeddedChain
from wallet.keystore import Signer
from wallet.models import Payment

PAYMENT = Payment.__table__


@pytest.fixture
def funded(chain: EmbeddedChain, journal: Journal) -> EmbeddedChain:
    chain.fund_agent(100_000_000)
    embedded_wallet(chain, journal).scan()
    return chain


def sent_count(chain: EmbeddedChain) -> int:
    """The agent's next nonce on chain, counting pending transactions."""
    return int(chain.w3.eth.get_transaction_count(chain.agent, "pending"))


def assert_no_nonce_gap(journal: Journal, first: int) -> None:
    """Every payment that reached the chain used the next nonce, from `first` on."""
    with journal.engine.connect() as conn:
        nonces = conn.execute(
            select(PAYMENT.c.nonce).where(PAYMENT.c.status == "confirmed").order_by(PAYMENT.c.nonce)
        ).scalars().all()
    assert nonces == list(range(first, first + len(nonces)))


def test_a_crash_at_signing_writes_nothing_and_the_next_settle_pays_once_without_a_nonce_gap(
    funded: EmbeddedChain, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    owe(journal, "embedded", 3_000_000, "c1")
    nonce = sent_count(funded)

    def die(self, tx: dict) -> None:  # noqa: ANN001
        raise Crash("while signing")

    monkeypatch.setattr(Signer, "sign_transaction", die)
    with pytest.raises(Crash):
        embedded_wallet(funded, journal).settle()
    monkeypatch.undo()
    assert sent_count(funded) == nonce and funded.balance_of(funded.others[0]) == 0

    report = embedded_wallet(funded, journal).settle()  # the restarted process
    (paid,) = report.paid
    assert paid.status == "confirmed" and paid.key.endswith(f":{nonce}")
    assert funded.balance_of(funded.others[0]) == funded.units(3_000_000)  # paid exactly once
    assert journal.balance(provider_account("embedded")) == 0
    assert embedded_wallet(funded, journal).settle().paid == ()

    owe(journal, "embedded", 2_000_000, "c2")  # later payments go on from the next nonce
    assert [p.status for p in embedded_wallet(funded, journal).settle().paid] == ["confirmed"]
    assert sent_count(funded) == nonce + 2
    assert_no_nonce_gap(journal, nonce)


def test_a_receipt_that_does_not_come_in_time_leaves_the_payment_sent_for_the_next_settle(
    funded: EmbeddedChain, journal: Journal
) -> None:
    owe(journal, "embedded", 2_000_000, "c1")
    tester = funded.w3.provider.ethereum_tester
    tester.disable_auto_mine_transactions()  # sent, but no block comes
    wallet = embedded_wallet(funded, journal)
    wallet.receipt_timeout = 0.3

    (pending,) = wallet.settle().paid  # no RpcUnavailable: the node answered, the block is late
    assert pending.status == "sent" and pending.tx_hash
    (row,) = payments(journal)
    assert row.status == "sent" and journal.balance(provider_account("embedded")) == -2_000_000
    blocked = wallet.settle()  # still not mined: looked up again, nothing new sent
    assert [p.status for p in blocked.recovered] == ["sent"] and blocked.paid == ()
    assert [r.reason for r in blocked.refused] == ["pending"]

    tester.enable_auto_mine_transactions()  # the block comes
    report = wallet.settle()
    assert [(p.status, p.tx_hash) for p in report.recovered] == [("confirmed", pending.tx_hash)]
    assert report.paid == ()
    assert funded.balance_of(funded.others[0]) == funded.units(2_000_000)  # once
    assert journal.balance(provider_account("embedded")) == 0 and len(payments(journal)) == 1
