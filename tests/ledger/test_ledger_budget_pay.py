"""Budget.pay: a call paid over x402 is booked against the wallet, once per payment key, and closes its hold."""

from __future__ import annotations

from sqlalchemy import text

from ledger import Budget, Journal, compute_account, provider_account
from ledger.accounts import WALLET
from ledger.funding import deposit
from tests.ledger.conftest import Clock

CR = 1_000_000
KEY = "x402:eip155:31337:0xpayer:0x" + "ab" * 32


def statuses(journal: Journal) -> list[str]:
    with journal.engine.connect() as conn:
        return list(conn.execute(text("SELECT status FROM ledger_reservation ORDER BY id")).scalars())


def test_a_paid_call_is_booked_against_the_wallet_and_closes_its_hold(journal: Journal, make_budget) -> None:
    deposit(journal, 10 * CR)
    budget: Budget = make_budget()
    hold = budget.reserve("writer", 300_000, model="m", provider="p", cycle_id="c1")
    budget.mark_sent(hold)
    txn = budget.pay(hold, 120_000, key=KEY, tx_hash="0x" + "12" * 32)
    assert journal.balance(compute_account("writer")) == 120_000
    assert journal.balance(WALLET) == 10 * CR - 120_000
    assert journal.balance(provider_account("p")) == 0  # the wallet paid: nothing owed
    snap = budget.snapshot()
    assert (snap.reserved, snap.liabilities, snap.spent_today) == (0, 0, 120_000)
    assert budget.cycle_spent("c1") == 120_000 and statuses(journal) == ["committed"]
    assert journal.verify() == []
    # The same payment resent under a new hold (a retry of the call): booked once, the new hold closed.
    again = budget.reserve("writer", 300_000, model="m", provider="p", cycle_id="c1")
    budget.mark_sent(again)
    assert budget.pay(again, 120_000, key=KEY) == txn
    assert journal.balance(compute_account("writer")) == 120_000
    assert budget.snapshot().spent_today == 120_000 and budget.snapshot().reserved == 0


def test_paying_a_hold_its_ttl_presumed_spent_reverses_the_worst_case(
        journal: Journal, make_budget, clock: Clock) -> None:
    deposit(journal, 10 * CR)
    budget: Budget = make_budget(reservation_ttl_seconds=60)
    hold = budget.reserve("writer", 300_000, model="m", provider="p")
    budget.mark_sent(hold)
    clock.advance(seconds=61)
    assert budget.expire_stale() == 1 and statuses(journal) == ["presumed"]
    assert journal.balance(provider_account("p")) == -300_000  # presumed owed to the provider
    budget.pay(hold, 120_000, key=KEY)
    assert journal.balance(provider_account("p")) == 0
    assert journal.balance(compute_account("writer")) == 120_000
    assert budget.snapshot().spent_today == 120_000
    assert statuses(journal) == ["committed"] and journal.verify() == []
