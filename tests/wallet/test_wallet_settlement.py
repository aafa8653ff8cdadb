"""Settlement: pay providers within allowlist and caps, never twice, gas recorded."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger.accounts import GAS
from ledger.journal import WALLET, Entry, Journal, provider_account
from tests.wallet.conftest import AnvilToken, embedded_wallet
from wallet.embedded import EmbeddedChain
from wallet.models import Payment
from wallet.settlement import GAS_COMMODITY, Settler

PAYMENT = Payment.__table__


def owe(journal: Journal, provider: str, ucr: int, key: str) -> None:
    journal.post("compute", [Entry("expenses:compute:writer", ucr), Entry(provider_account(provider), -ucr)], idempotency_key=key)


def payments(journal: Journal) -> list:
    with journal.engine.connect() as conn:
        return conn.execute(select(PAYMENT).order_by(PAYMENT.c.id)).all()


@pytest.fixture
def funded(chain: EmbeddedChain, journal: Journal) -> EmbeddedChain:
    chain.fund_agent(100_000_000)
    embedded_wallet(chain, journal).scan()
    return chain


def test_a_provider_over_the_threshold_is_paid_and_gas_recorded(funded: EmbeddedChain, journal: Journal) -> None:
    wallet = embedded_wallet(funded, journal)
    owe(journal, "embedded", 3_000_000, "c1")
    report = wallet.settle()
    (paid,) = report.paid
    assert paid.status == "confirmed" and paid.amount_ucr == 3_000_000
    assert funded.balance_of(funded.others[0]) == funded.units(3_000_000)
    assert journal.balance(provider_account("embedded")) == 0
    assert journal.balance(WALLET) == 97_000_000
    assert paid.gas_wei and journal.balance(GAS, GAS_COMMODITY) == paid.gas_wei
    assert wallet.reconcile().drift_ucr == 0
    assert wallet.settle().paid == ()  # nothing owed any more


def test_below_the_threshold_nothing_is_paid(funded: EmbeddedChain, sqlite_journal: Journal) -> None:
    funded.fund_agent(1_000_000)
    wallet = embedded_wallet(funded, sqlite_journal, settle_threshold="5")
    owe(sqlite_journal, "embedded", 4_999_999, "c1")
    assert wallet.settle().paid == ()


def test_a_payee_outside_the_allowlist_is_refused(funded: EmbeddedChain, journal: Journal) -> None:
    wallet = embedded_wallet(funded, journal, allowlist=(funded.others[1],))
    owe(journal, "embedded", 2_000_000, "c1")
    report = wallet.settle()
    assert report.paid == () and [r.reason for r in report.refused] == ["allowlist"]
    assert payments(journal) == []


def test_a_provider_without_an_address_is_refused(funded: EmbeddedChain, journal: Journal) -> None:
    wallet = embedded_wallet(funded, journal)
    owe(journal, "elsewhere", 2_000_000, "c1")
    assert [r.reason for r in wallet.settle().refused] == ["no_payee"]


def test_one_payment_is_at_most_the_per_tx_cap(funded: EmbeddedChain, journal: Journal) -> None:
    wallet = embedded_wallet(funded, journal, settle_max_per_tx="2")
    owe(journal, "embedded", 5_000_000, "c1")
    (paid,) = wallet.settle().paid
    assert paid.amount_ucr == 2_000_000
    assert journal.balance(provider_account("embedded")) == -3_000_000


def test_a_day_pays_at_most_the_daily_cap(funded: EmbeddedChain, journal: Journal) -> None:
    wallet = embedded_wallet(funded, journal, settle_max_per_tx="4", settle_daily_cap="6")
    owe(journal, "embedded", 10_000_000, "c1")
    assert [p.amount_ucr for p in wallet.settle().paid] == [4_000_000]
    assert [p.amount_ucr for p in wallet.settle().paid] == [2_000_000]
    third = wallet.settle()
    assert third.paid == () and [r.reason for r in third.refused] == ["daily_cap"]
    assert funded.balance_of(funded.others[0]) == funded.units(6_000_000)


def test_dry_run_shows_the_payment_and_sends_nothing(funded: EmbeddedChain, journal: Journal) -> None:
    wallet = embedded_wallet(funded, journal)
    owe(journal, "embedded", 2_500_000, "c1")
    report = wallet.settle(dry_run=True)
    (plan,) = report.planned
    assert (plan.provider, plan.amount_ucr, plan.units) == ("embedded", 2_500_000, funded.units(2_500_000))
    assert payments(journal) == [] and funded.balance_of(funded.others[0]) == 0


class Crash(BaseException):
    """The process dies (not an Exception: nothing may catch it on the way out)."""


def test_a_payment_interrupted_after_sending_is_not_repeated(
    funded: EmbeddedChain, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    owe(journal, "embedded", 3_000_000, "c1")

    def die(self, key: str) -> None:  # noqa: ANN001
        raise Crash(key)

    monkeypatch.setattr(Settler, "_after_send", die)
    with pytest.raises(Crash):
        embedded_wallet(funded, journal).settle()
    (row,) = payments(journal)
    assert row.status == "sent" and row.tx_hash  # hash stored before the crash; receipt not recorded
    monkeypatch.undo()

    restarted = embedded_wallet(funded, journal)
    report = restarted.settle()
    assert [p.status for p in report.recovered] == ["confirmed"]
    assert report.paid == ()  # the liability is paid: nothing new
    assert funded.balance_of(funded.others[0]) == funded.units(3_000_000)
    assert journal.balance(provider_account("embedded")) == 0
    assert len(payments(journal)) == 1


def test_a_payment_signed_but_never_sent_is_resent_byte_for_byte(
    funded: EmbeddedChain, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    owe(journal, "embedded", 1_000_000, "c1")

    def die(self, raw: bytes) -> None:  # noqa: ANN001
        raise Crash("before send")

    monkeypatch.setattr(Settler, "_send", die)
    with pytest.raises(Crash):
        embedded_wallet(funded, journal).settle()
    (row,) = payments(journal)
    assert row.status == "signed"
    monkeypatch.undo()
    report = embedded_wallet(funded, journal).settle()
    (rec,) = report.recovered
    assert rec.status == "confirmed" and rec.tx_hash == row.tx_hash
    assert funded.balance_of(funded.others[0]) == funded.units(1_000_000)


@pytest.mark.integration
def test_settlement_on_a_real_node_pays_once_and_reconciles(anvil_token: AnvilToken, journal: Journal) -> None:
    anvil_token.mint(anvil_token.agent, 50_000_000)
    wallet = anvil_token.wallet(journal, confirmations=0)
    wallet.scan()
    owe(journal, "cloud", 7_000_000, "c1")
    (paid,) = wallet.settle().paid
    assert paid.status == "confirmed" and paid.gas_wei > 0
    assert anvil_token.balance_of(anvil_token.payee) == anvil_token.units(7_000_000)
    assert wallet.settle().paid == ()
    assert wallet.reconcile().drift_ucr == 0
