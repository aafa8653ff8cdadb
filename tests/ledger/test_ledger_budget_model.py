"""The budget and ledger against a model, on SQLite and PostgreSQL (Hypothesis RuleBasedStateMachine).

Steps: reserve, mark sent, answer (commit, sometimes failing transiently), retry a failed commit, fail
ambiguously (book the worst case) and maybe learn the usage later, fail before send (release), a 4xx
refusal without usage (release), crash (abandon a hold; the provider may still have served it), time
passing, deposit, the gate (evaluate) and the sweep (expire_stale).

Invariants after every step:
  - available = wallet - liabilities - open holds, and each term is what the model says;
  - ledger spend == the model's booking, exactly; spend + open sent holds >= what the provider
    served (its own tally), and == it for every call whose usage came back;
  - the daily and per-cycle counters never pass their caps; a reservation is refused iff it does not fit;
  - paused iff the hysteresis says so, with stale holds expired first (so a deposit resumes the gate).
At the end every hold has expired or closed, and spend >= served with no open hold left.

One database per test; each example is a fresh persona on a fresh day, compared by differences.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from kernel.money import format_credits
from config.settings import BudgetSettings
from ledger import Budget, BudgetExceeded, Journal
from ledger.budget import Hold, HoldClosed, cycle_key, day_key
from ledger.funding import deposit
from tests.ledger.conftest import T0, Clock

TTL = 60
DAILY_CAP = 1_500_000
CYCLE_CAP = 600_000
CYCLES = ("c1", "c2", None)
MACHINE_SETTINGS = settings(
    max_examples=30, stateful_step_count=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class FlakyJournal(Journal):
    """A journal whose next `fail` postings raise a transient database error (SQLite busy, a PG drop)."""

    fail = 0

    def post_cursor(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        if self.fail:
            self.fail -= 1
            raise OperationalError("INSERT INTO ledger_txn", {}, Exception("database is locked"))
        return super().post_cursor(*args, **kwargs)


@dataclass
class ModelHold:
    """The model's view of one hold."""

    hold: Hold
    expires: datetime
    state: str = "open"  # open | committed | released | expired | presumed
    sent: bool = False
    live: bool = True  # its process is alive
    served: int = 0  # what the provider generated and billed for it
    usage_known: bool = False  # the client received the usage (served is then exact)
    pending: int | None = None  # a commit the database refused, still to retry
    booked: int = 0  # what the ledger should hold as spent for it


def make_machine(engine: Engine) -> type[RuleBasedStateMachine]:
    """A machine class bound to one migrated database."""
    journal = FlakyJournal(engine)
    journal.migrate()
    examples = itertools.count(1)

    class BudgetMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            n = next(examples)
            self.n = n
            self.clock = Clock(T0 + timedelta(days=n))
            probe = Budget(journal, BudgetSettings(reservation_ttl_seconds=TTL), persona=f"probe{n}", clock=self.clock)
            probe.expire_stale()  # a day later, whatever an earlier (failed) example left open is stale
            start = probe.snapshot()
            if start.available < 2_000_000:
                deposit(journal, 2_000_000, idempotency_key=f"model-top-up-{n}")
                start = probe.snapshot()
            self.base = start
            self.base_spend = journal.balance("expenses:compute")
            b = start.available
            self.settings = BudgetSettings(
                min_balance=format_credits(b - 700_000), resume_balance=format_credits(b - 200_000),
                daily_cap=format_credits(DAILY_CAP), per_cycle_cap=format_credits(CYCLE_CAP),
                reservation_ttl_seconds=TTL,
            )
            self.budget = Budget(journal, self.settings, persona=f"model{n}", clock=self.clock)
            self.holds: list[ModelHold] = []
            self.deposits = 0
            self.paused = False
            self.spent: dict[str, int] = {}
            self.reserved: dict[str, int] = {}

        # -- the model's arithmetic ------------------------------------------------------

        def keys(self, h: ModelHold) -> list[str]:
            return [h.hold.day] + ([cycle_key(h.hold.cycle_id)] if h.hold.cycle_id else [])

        def count(self, h: ModelHold, spent: int, reserved: int) -> None:
            for k in self.keys(h):
                self.spent[k] = self.spent.get(k, 0) + spent
                self.reserved[k] = self.reserved.get(k, 0) + reserved

        def open_amount(self) -> int:
            return sum(h.hold.amount for h in self.holds if h.state == "open")

        def booked(self) -> int:
            return sum(h.booked for h in self.holds)

        def available(self) -> int:
            return self.base.available + self.deposits - self.booked() - self.open_amount()

        def expire(self) -> None:
            """What every write under the budget lock does first: expire holds past their TTL."""
            now = self.clock()
            for h in self.holds:
                if h.state == "open" and h.expires < now:
                    if h.sent:
                        h.state, h.booked = "presumed", h.hold.amount
                        self.count(h, h.hold.amount, -h.hold.amount)
                    else:
                        h.state = "expired"
                        self.count(h, 0, -h.hold.amount)

        def pick(self, sel: int, ok) -> ModelHold | None:  # noqa: ANN001
            found = [h for h in self.holds if ok(h)]
            return found[sel % len(found)] if found else None

        # -- rules ------------------------------------------------------------------------

        @rule(amount=st.integers(1, 400_000), cycle=st.sampled_from(CYCLES))
        def reserve(self, amount: int, cycle: str | None) -> None:
            self.expire()
            cycle_id = f"{cycle}-{self.n}" if cycle else None
            day = day_key(self.clock())
            room = min(self.available() - self.settings.reserve,
                       DAILY_CAP - self.spent.get(day, 0) - self.reserved.get(day, 0))
            if cycle_id:
                ck = cycle_key(cycle_id)
                room = min(room, CYCLE_CAP - self.spent.get(ck, 0) - self.reserved.get(ck, 0))
            fits = not self.paused and amount <= room
            try:
                hold = self.budget.reserve("writer", amount, model="m", provider="p", cycle_id=cycle_id)
            except BudgetExceeded as exc:
                assert not fits, f"refused ({exc.limit}) though {amount} fits in {room}"
                return
            assert fits, f"{amount} reserved though the room was {room} (paused {self.paused})"
            h = ModelHold(hold, self.clock() + timedelta(seconds=TTL))
            self.holds.append(h)
            self.count(h, 0, amount)

        @rule(sel=st.integers(0, 99))
        def mark_sent(self, sel: int) -> None:
            h = self.pick(sel, lambda h: h.live and not h.sent and h.state in ("open", "expired"))
            if h is None:
                return
            if h.state == "expired":
                with pytest.raises(HoldClosed):
                    self.budget.mark_sent(h.hold)
                h.live = False  # the client gives up: nothing was sent
                return
            self.budget.mark_sent(h.hold)
            h.sent = True

        @rule(sel=st.integers(0, 99), share=st.integers(0, 100), db_fails=st.booleans())
        def answer(self, sel: int, share: int, db_fails: bool) -> None:
            """The provider answers with usage (at most the worst case); the client commits it."""
            h = self.pick(sel, lambda h: h.live and h.sent and h.state == "open" and h.pending is None)
            if h is None:
                return
            actual = h.hold.amount * share // 100
            h.served, h.usage_known = actual, True
            if db_fails:
                journal.fail = 1
                with pytest.raises(OperationalError):
                    self.budget.commit(h.hold, actual)
                journal.fail = 0
                h.pending = actual  # the hold stays open: never released after an answer
                return
            self.budget.commit(h.hold, actual)
            h.state, h.booked = "committed", actual
            self.count(h, actual, -h.hold.amount)

        @rule(sel=st.integers(0, 99))
        def retry_commit(self, sel: int) -> None:
            h = self.pick(sel, lambda h: h.live and h.pending is not None)
            if h is None:
                return
            self.budget.commit(h.hold, h.pending)
            if h.state == "open":
                self.count(h, h.pending, -h.hold.amount)
            else:  # presumed by expiry meanwhile: corrected
                self.count(h, h.pending - h.booked, 0)
            h.state, h.booked, h.pending = "committed", h.pending, None

        @rule(sel=st.integers(0, 99), share=st.integers(0, 100), served=st.booleans())
        def fail_ambiguously(self, sel: int, share: int, served: bool) -> None:
            """A timeout or reset after the request was written: the provider may or may not have served it."""
            h = self.pick(sel, lambda h: h.live and h.sent and h.state == "open" and h.pending is None)
            if h is None:
                return
            h.served = h.hold.amount * share // 100 if served else 0
            self.budget.book_worst_case(h.hold)
            h.state, h.booked = "presumed", h.hold.amount
            self.count(h, h.hold.amount, -h.hold.amount)

        @rule(sel=st.integers(0, 99))
        def usage_reported_later(self, sel: int) -> None:
            h = self.pick(sel, lambda h: h.live and h.state == "presumed" and not h.usage_known and h.pending is None)
            if h is None:
                return
            self.budget.commit(h.hold, h.served)
            self.count(h, h.served - h.booked, 0)
            h.state, h.booked, h.usage_known = "committed", h.served, True

        @rule(sel=st.integers(0, 99))
        def fail_before_send(self, sel: int) -> None:
            h = self.pick(sel, lambda h: h.live and not h.sent and h.state == "open")
            if h is None:
                return
            self.budget.release(h.hold)
            h.state, h.live = "released", False
            self.count(h, 0, -h.hold.amount)

        @rule(sel=st.integers(0, 99))
        def rejected_unbilled(self, sel: int) -> None:
            """A 4xx without usage: refused before generation."""
            h = self.pick(sel, lambda h: h.live and h.sent and h.state == "open" and h.pending is None)
            if h is None:
                return
            self.budget.release(h.hold)
            h.state, h.live, h.usage_known = "released", False, True
            self.count(h, 0, -h.hold.amount)

        @rule(sel=st.integers(0, 99), share=st.integers(0, 100))
        def crash(self, sel: int, share: int) -> None:
            """The client process dies; a sent request may still have been served in full or in part."""
            h = self.pick(sel, lambda h: h.live)
            if h is None:
                return
            h.live = False
            if h.sent and not h.usage_known and h.state == "open":
                h.served = h.hold.amount * share // 100

        @rule(seconds=st.integers(1, 2 * TTL))
        def time_passes(self, seconds: int) -> None:
            self.clock.advance(seconds=seconds)

        @rule(amount=st.integers(1, 1_000_000))
        def deposit(self, amount: int) -> None:
            deposit(journal, amount, idempotency_key=f"model-{self.n}-{len(self.holds)}-{self.deposits}-{amount}")
            self.deposits += amount

        @rule()
        def gate(self) -> None:
            self.expire()
            avail = self.available()
            if self.paused and avail < self.settings.resume_balance:
                pass
            else:
                self.paused = avail < self.settings.min_balance
            state = self.budget.evaluate()
            assert state.paused == self.paused, (state, avail)

        @rule()
        def sweep(self) -> None:
            expected = sum(1 for h in self.holds if h.state == "open" and h.expires < self.clock())
            self.expire()
            assert self.budget.expire_stale() == expected

        # -- invariants -------------------------------------------------------------------

        @invariant()
        def money_adds_up(self) -> None:
            snap = self.budget.snapshot()
            assert snap.reserved == self.open_amount()
            assert snap.wallet == self.base.wallet + self.deposits
            assert snap.liabilities == self.base.liabilities + self.booked()
            assert snap.available == snap.wallet - snap.liabilities - snap.reserved == self.available()
            assert journal.balance("expenses:compute") - self.base_spend == self.booked()

        @invariant()
        def spend_covers_what_was_served(self) -> None:
            open_sent = sum(h.hold.amount for h in self.holds if h.state == "open" and h.sent)
            assert self.booked() + open_sent >= sum(h.served for h in self.holds)
            for h in self.holds:
                if h.usage_known and h.pending is None and h.state != "open":
                    assert h.booked == h.served, h
                if h.state == "presumed":
                    assert h.booked >= h.served, h

        @invariant()
        def caps_hold(self) -> None:
            keys = sorted({k for h in self.holds for k in self.keys(h)})
            if not keys:
                return
            with journal.engine.connect() as conn:
                rows = dict(
                    (k, (int(s), int(r))) for k, s, r in conn.execute(
                        text("SELECT key, spent, reserved FROM ledger_spend_counter")) if k in keys)
            for k in keys:
                spent, reserved = rows.get(k, (0, 0))
                assert (spent, reserved) == (self.spent.get(k, 0), self.reserved.get(k, 0)), k
                cap = DAILY_CAP if k.startswith("day:") else CYCLE_CAP
                assert spent + reserved <= cap, (k, spent, reserved)

        @invariant()
        def pause_is_the_hysteresis(self) -> None:
            assert self.budget.pause_state().paused == self.paused

        def teardown(self) -> None:
            # Every process is gone; after the TTL the gate expires what they left.
            self.clock.advance(seconds=TTL + 1)
            self.expire()
            self.budget.evaluate()
            assert self.budget.snapshot().reserved == 0
            assert self.booked() >= sum(h.served for h in self.holds)
            assert journal.balance("expenses:compute") - self.base_spend == self.booked()

    return BudgetMachine


def test_budget_and_ledger_match_their_model(engine: Engine) -> None:
    machine = make_machine(engine)
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
    assert Journal(engine).verify() == []
