"""The tips scanner against a chain model, as a Hypothesis state machine on SQLite and PostgreSQL.

The world: blocks with tips, mints and transfers to strangers; reorgs of any depth that drop,
move or re-include transactions, or shorten the chain; old forks winning again with their very
block hashes (A -> B -> A); a node that lags (an older head, perhaps on a replaced fork), a load
balancer that mixes a current head with lagging blocks, a node that refuses wide log ranges, and
any of these striking in the middle of a scan. The scanner sees it only through the node.

Invariants:
  always      ledger = live counted rows (assets:wallet, income:tips, equity:opening), double entry
              holds, and no transaction is live in two blocks at once;
  each scan   by a node that is only behind (its view a prefix of the chain) reverses no canonical log;
  once stable (the node caught up and the chain grew past every height it had): one scan makes
              income:tips = the tips to the agent in canonical blocks at depth >= confirmations,
              equity:opening = the mints likewise, each counted once, and the dust agrees.

Each example gets its own chain id, so rows, keys and the cursor of earlier examples never meet it;
ledger balances are compared as deltas from the example's start.
"""

from __future__ import annotations

from collections import Counter
from itertools import count

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from ledger.journal import OPENING, TIPS, WALLET, Journal
from tests.wallet.chainmodel import AGENT, FUNDER, STRANGER, TOKEN, Chain, FakeNode, FakeW3, Transfer
from wallet.chain import ZERO_ADDRESS
from wallet.models import CountedLog, Dust
from wallet.scanner import LogRange, TipScanner

COUNTED = CountedLog.__table__
DUST = Dust.__table__
CONFIRMATIONS = 2
DECIMALS = 7  # 10 token units to the micro-credit: odd amounts leave dust
BLOCK_RANGE = 16
WINDOW = 256  # deeper than any chain built here: every fork point lies within the reorg window
MACHINE_SETTINGS = settings(
    max_examples=40, stateful_step_count=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

KINDS = st.sampled_from(["tip", "tip", "funding", "stranger"])
TRANSFERS = st.lists(st.tuples(KINDS, st.integers(1, 50_000)), max_size=3)
SOME_TRANSFERS = st.lists(st.tuples(KINDS, st.integers(1, 50_000)), min_size=1, max_size=3)
EVENTS = st.sampled_from(["lag", "catch_up", "mixed", "reorg", "restore", "mine"])


def machine_for(journal: Journal) -> type[RuleBasedStateMachine]:
    """The state machine class over one migrated database."""
    chain_ids = count(1)

    class ScannerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.chain_id = next(chain_ids)
            self.chain = Chain()
            self.node = FakeNode(self.chain)
            self.log_range = LogRange(BLOCK_RANGE)  # one per wallet, kept across scans
            self.base = {a: journal.balance(a) for a in (WALLET, TIPS, OPENING)}
            self.top = 0  # the highest head the chain ever had

        # -- the world -------------------------------------------------------------------

        def _transfer(self, kind: str, units: int) -> Transfer:
            sender, to = {"tip": (FUNDER, AGENT), "funding": (ZERO_ADDRESS, AGENT), "stranger": (FUNDER, STRANGER)}[kind]
            return self.chain.transfer(sender, to, units)

        def _grew(self) -> None:
            self.top = max(self.top, self.chain.head)

        @rule(transfers=SOME_TRANSFERS, confirm=st.booleans())
        def mine(self, transfers: list[tuple[str, int]], confirm: bool) -> None:
            self.chain.mine(tuple(self._transfer(k, u) for k, u in transfers))
            for _ in range(CONFIRMATIONS if confirm else 0):
                self.chain.mine()
            self._grew()

        @rule(blocks=st.integers(1, 3))
        def mine_empty(self, blocks: int) -> None:
            for _ in range(blocks):
                self.chain.mine()
            self._grew()

        @rule(depth=st.integers(1, 5), data=st.data())
        def reorg(self, depth: int, data: st.DataObject) -> None:
            """Replace the top blocks: their transactions dropped, moved, or re-included; new ones too."""
            self._reorg(depth, data)

        @rule(depth=st.integers(1, 5), flips=st.integers(1, 3), data=st.data())
        def flap(self, depth: int, flips: int, data: st.DataObject) -> None:
            """A -> B -> A (-> B ...): a fork wins, is scanned, and the old chain wins back, block for block."""
            forks = [len(self.chain.history) - 1]
            self._reorg(depth, data)
            forks.append(len(self.chain.history) - 1)
            for i in range(flips):
                self.scanner().scan()
                self.chain.restore(forks[i % 2])

        def _reorg(self, depth: int, data: st.DataObject) -> None:
            dropped = self.chain.top_transfers(depth)
            length = data.draw(st.integers(0, depth + 2), label="new blocks")
            blocks: list[list[Transfer]] = [[] for _ in range(length)]
            if length:
                for t in dropped:
                    where = data.draw(st.integers(-1, length - 1), label="re-included in")
                    if where >= 0:
                        blocks[where].append(t)
                for kind, units in data.draw(TRANSFERS, label="new transfers"):
                    blocks[data.draw(st.integers(0, length - 1))].append(self._transfer(kind, units))
            self.chain.reorg(depth, [tuple(b) for b in blocks])
            self._grew()

        @rule(index=st.integers(0, 50))
        def restore(self, index: int) -> None:
            """An earlier canonical chain wins again, with its very blocks (A -> B -> A)."""
            self.chain.restore(index)
            self._grew()

        @rule(index=st.integers(0, 50), mixed=st.booleans())
        def lag(self, index: int, mixed: bool) -> None:
            """The node answers from an older canonical chain (or only its blocks do, behind a balancer)."""
            self.node.lag = self.chain.history[index % len(self.chain.history)]
            self.node.mixed = mixed

        @rule()
        def catch_up(self) -> None:
            self.node.lag, self.node.mixed = None, False

        @rule(max_results=st.none() | st.integers(1, 3), max_range=st.none() | st.integers(1, 6))
        def limits(self, max_results: int | None, max_range: int | None) -> None:
            """The node's eth_getLogs limits: results (over more than one block) and range."""
            self.node.max_results, self.node.max_range = max_results, max_range

        # -- the scanner -----------------------------------------------------------------

        def scanner(self) -> TipScanner:
            return TipScanner(
                FakeW3(self.node), journal, chain_id=self.chain_id, token=TOKEN, address=AGENT, decimals=DECIMALS,
                confirmations=CONFIRMATIONS, block_range=BLOCK_RANGE, reorg_window=WINDOW, log_range=self.log_range,
            )

        @rule(max_blocks=st.none() | st.integers(1, 8))
        def scan(self, max_blocks: int | None) -> None:
            lag = self.node.lag
            behind_only = lag is None or self.chain.canonical[: len(lag)] == lag  # not on a replaced fork
            before = {r.id for r in self.live()}
            self.scanner().scan(max_blocks)
            if behind_only:  # nothing it said contradicts the chain: no canonical log may be reversed
                canonical = set(self.chain.canonical)
                with journal.engine.connect() as conn:
                    undone = conn.execute(select(COUNTED).where(
                        COUNTED.c.chain_id == self.chain_id, COUNTED.c.status == "reversed")).all()
                assert not [r for r in undone if r.id in before and r.block_hash in canonical], \
                    "a node that was only behind made the scanner reverse a canonical log"

        @rule(at=st.integers(0, 8), event=EVENTS, n=st.integers(0, 50))
        def scan_interrupted(self, at: int, event: str, n: int) -> None:
            """A scan during which the world changes once, before the node's `at`-th answer."""

            def strike() -> None:
                if event == "lag":
                    self.node.lag = self.chain.history[n % len(self.chain.history)]
                elif event == "mixed":
                    self.node.lag, self.node.mixed = self.chain.history[n % len(self.chain.history)], True
                elif event == "catch_up":
                    self.node.lag, self.node.mixed = None, False
                elif event == "reorg":
                    depth = n % 4 + 1
                    moved = tuple(self.chain.top_transfers(depth))
                    self.chain.reorg(depth, [(), moved][: 1 + n % 2])
                elif event == "restore":
                    self.chain.restore(n)
                else:
                    self.chain.mine()
                self._grew()

            self.node.at_call(at, strike)
            self.scanner().scan()
            self.node.forget_events()  # an event the scan did not reach never happens

        @rule()
        def stable(self) -> None:
            """The node catches up and the chain grows past every height it had: one scan settles it."""
            self.node.lag, self.node.mixed = None, False
            self.node.forget_events()
            while self.chain.head < self.top:
                self.chain.mine()
            r = self.scanner().scan()
            assert r.note == "", r.note
            assert r.to_block == max(self.chain.head - CONFIRMATIONS, -1)  # the cursor reached safe
            expected = self.chain.expected(AGENT, CONFIRMATIONS)
            live = self.live()
            assert Counter((r.tx_hash, r.log_index, r.block_hash) for r in live) == Counter(
                (t.tx_hash, index, block) for t, index, block in expected
            )
            tips = sum(t.units // 10 for t, _, _ in expected if t.sender != ZERO_ADDRESS)
            mints = sum(t.units // 10 for t, _, _ in expected if t.sender == ZERO_ADDRESS)
            assert self.delta(TIPS) == -tips
            assert self.delta(OPENING) == -mints
            assert self.delta(WALLET) == tips + mints
            with journal.engine.connect() as conn:
                dust = conn.execute(select(DUST.c.units).where(DUST.c.source.like(f"tip:{self.chain_id}:%"))).scalars().all()
            assert sum(int(u) for u in dust) == sum(t.units % 10 for t, _, _ in expected)

        def teardown(self) -> None:
            self.stable()

        # -- invariants ------------------------------------------------------------------

        def live(self) -> list:
            with journal.engine.connect() as conn:
                return conn.execute(
                    select(COUNTED).where(COUNTED.c.chain_id == self.chain_id, COUNTED.c.status == "counted")
                ).all()

        def delta(self, account: str) -> int:
            return journal.balance(account) - self.base[account]

        @invariant()
        def ledger_matches_the_live_rows_each_live_in_one_block(self) -> None:
            live = self.live()
            balances = journal.balances()
            assert balances.get(TIPS, 0) - self.base[TIPS] == -sum(r.ucr for r in live if r.kind == "tip")
            assert balances.get(OPENING, 0) - self.base[OPENING] == -sum(r.ucr for r in live if r.kind == "funding")
            assert balances.get(WALLET, 0) - self.base[WALLET] == sum(r.ucr for r in live)
            blocks: dict[str, set[str]] = {}
            for r in live:
                blocks.setdefault(r.tx_hash, set()).add(r.block_hash)
            assert all(len(b) == 1 for b in blocks.values()), "a transaction is live in two blocks"

    return ScannerMachine


def test_tips_follow_the_canonical_chain_through_reorgs_and_lagging_nodes(journal: Journal) -> None:
    run_state_machine_as_test(machine_for(journal), settings=MACHINE_SETTINGS)
    assert journal.verify() == []
    with journal.engine.connect() as conn:  # every booking and reversal is its own ledger transaction
        assert conn.execute(select(func.count()).select_from(COUNTED)).scalar() > 0
