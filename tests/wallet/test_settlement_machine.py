"""Settlement as a state machine over a chain model, on SQLite and on PostgreSQL.

Rules: liabilities accrue; settle runs (as a fresh process each time), sometimes dying or timing out at a
chosen call (signing, building, sending before or after the node took it, reading the receipt); blocks
are mined; the payment's block is reorged out (its transactions back in the pool, or lost); the node lags
or answers "not found" while another node says the nonce is used; another program spends the agent's
nonce; the sender runs out of gas money.

Invariants, after every step:
  - the payee is never paid more than was owed: canonical transfers to it <= liabilities posted so far
  - the ledger never books more than was owed: every provider liability stays <= 0
Once the chain is stable (no lag, no faults) and settle has run enough (`stabilize`, also at the end):
  - ledger payments == canonical payments at depth >= confirmations, by transaction and amount, each once
  - and everything owed is paid: liability 0, the payee holds exactly what was owed
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from config.db import make_engine
from config.settings import WalletSettings
from ledger.journal import Entry, Journal, provider_account
from tests.wallet.conftest import make_journal
from tests.wallet.settlechain import PAYEE, ChainModel, Crash, FakeSigner
from wallet.errors import InsufficientGas, RpcUnavailable
from wallet.models import Payment
from wallet.settlement import OPEN_STATUSES, Settler

PAYMENT = Payment.__table__
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CREDIT = 1_000_000  # ucr; the model's token has 6 decimals, so one unit is one ucr
EXAMPLES = count()
MACHINE_SETTINGS = settings(
    max_examples=30, stateful_step_count=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
FAULTS = [
    ("transfer", "crash_before"), ("send", "crash_before"), ("send", "crash_after"), ("send", "timeout_after"),
    ("receipt", "crash_before"), ("head", "crash_before"),
]


class SettlementMachine(RuleBasedStateMachine):
    """One agent paying one provider; each example has a chain id and provider of its own on the shared database."""

    journal: Journal

    def __init__(self) -> None:
        super().__init__()
        n = next(EXAMPLES)
        self.chain_id = 10_000 + n
        self.provider = f"cloud-{n}"
        self.owed_total = 0
        self.keys = count()

    @initialize(confirmations=st.integers(0, 2), automine=st.booleans(), credits=st.integers(1, 4))
    def start(self, confirmations: int, automine: bool, credits: int) -> None:
        self.conf = confirmations
        self.chain = ChainModel(token_supply=10**12, automine=automine)
        self.signer = FakeSigner()
        self.settings = WalletSettings(
            mode="evm", confirmations=confirmations, settle_threshold="1", settle_max_per_tx="3",
            settle_daily_cap="1000000", allowlist=(PAYEE,), providers={self.provider: PAYEE},
        )
        self.owe(credits)

    # -- the world -------------------------------------------------------------------

    def settler(self) -> Settler:
        """A settler as a freshly started process builds it."""
        return Settler(
            None, self.journal, self.signer, self.settings, chain_id=self.chain_id, token=TOKEN, decimals=6,
            chain=self.chain, receipt_timeout=0, sleep=lambda _s: None,
        )

    def run_settle(self) -> None:
        try:
            self.settler().settle()
        except (Crash, RpcUnavailable, InsufficientGas):
            pass  # the process died, or the job is retried / paused: the next run goes on from the database

    @rule(credits=st.integers(1, 4))
    def owe(self, credits: int) -> None:
        ucr = credits * CREDIT
        self.journal.post("compute", [Entry("expenses:compute:writer", ucr), Entry(provider_account(self.provider), -ucr)],
                          idempotency_key=f"owe:{self.chain_id}:{next(self.keys)}")
        self.owed_total += ucr

    @rule()
    def settle(self) -> None:
        self.run_settle()

    @rule(fault=st.sampled_from(FAULTS))
    def settle_with_a_fault(self, fault: tuple[str, str]) -> None:
        self.chain.fault = fault
        self.run_settle()
        self.chain.fault = None

    @rule()
    def settle_crashing_while_signing(self) -> None:
        self.signer.crash_next = True
        self.run_settle()
        self.signer.crash_next = False

    @rule(blocks=st.integers(1, 3))
    def mine(self, blocks: int) -> None:
        self.chain.mine(blocks)

    @rule(depth=st.integers(1, 3), requeue=st.booleans(), include=st.booleans())
    def reorg(self, depth: int, requeue: bool, include: bool) -> None:
        self.chain.reorg(depth, requeue=requeue, include=include)

    @rule(lag=st.integers(0, 2))
    def node_lags(self, lag: int) -> None:
        self.chain.lag = lag

    @rule(lookups=st.integers(1, 4))
    def lookups_miss(self, lookups: int) -> None:
        self.chain.blind = lookups

    @rule()
    def another_program_spends_a_nonce(self) -> None:
        self.chain.foreign()

    @rule(funded=st.booleans())
    def gas_money(self, funded: bool) -> None:
        self.chain.native = 10**18 if funded else 0

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def the_payee_is_never_paid_more_than_was_owed(self) -> None:
        if hasattr(self, "chain"):
            assert self.chain.paid(PAYEE) <= self.owed_total, (self.chain.paid(PAYEE), self.owed_total)

    @invariant()
    def the_ledger_never_books_more_than_was_owed(self) -> None:
        assert self.journal.balance(provider_account(self.provider)) <= 0

    @rule()
    def stabilize(self) -> None:
        """Calm the chain, let settle run until nothing is open or owed, then compare ledger and chain."""
        chain = self.chain
        chain.lag, chain.blind, chain.fault, chain.native = 0, 0, None, 10**18
        for _ in range(12):
            self.run_settle()
            chain.mine(self.conf + 1)
            if not self.open_rows() and self.owed() == 0:
                break
        self.run_settle()  # books what the last mining confirmed
        assert not self.open_rows(), self.open_rows()
        booked = self.booked()
        on_chain = chain.paid_txs(PAYEE, self.conf)
        assert booked == on_chain, (booked, on_chain)
        assert chain.paid_txs(PAYEE) == on_chain  # nothing paid that is not yet deep enough
        assert sum(on_chain.values()) == self.owed_total and self.owed() == 0

    def teardown(self) -> None:
        if hasattr(self, "chain"):
            self.stabilize()

    # -- reading the database --------------------------------------------------------

    def open_rows(self) -> list:
        with self.journal.engine.connect() as conn:
            return conn.execute(select(PAYMENT.c.idempotency_key, PAYMENT.c.status).where(
                PAYMENT.c.chain_id == self.chain_id, PAYMENT.c.status.in_(OPEN_STATUSES))).all()

    def booked(self) -> dict[str, int]:
        with self.journal.engine.connect() as conn:
            rows = conn.execute(select(PAYMENT.c.tx_hash, PAYMENT.c.units).where(
                PAYMENT.c.chain_id == self.chain_id, PAYMENT.c.status == "confirmed")).all()
        return {h: int(u) for h, u in rows}

    def owed(self) -> int:
        return -self.journal.balance(provider_account(self.provider))


@pytest.fixture
def machine_journal(db_url: str) -> Iterator[Journal]:
    eng = make_engine(db_url)
    yield make_journal(eng)
    eng.dispose()


def test_settlement_machine(machine_journal: Journal) -> None:
    SettlementMachine.journal = machine_journal
    run_state_machine_as_test(SettlementMachine, settings=MACHINE_SETTINGS)
    assert machine_journal.verify() == []
