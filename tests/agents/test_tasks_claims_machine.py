"""Task claims as a state machine, on SQLite and the real PostgreSQL.

Workers claim tasks, renew their leases, finish steps, hang past their lease
(another worker takes over), crash, and the hung worker then tries to write.
Invariants, after every rule:
  - a worker whose claim was taken over (or released) never writes: its write raises ClaimLost
    and the stored task is exactly what the model says;
  - no step of a task is ever done twice (a task is never advanced by two workers);
  - nothing is lost: at the end, after every lease has run out, one worker finishes every task, once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from agents.tasks import APPROVED, DRAFTED, PLANNED, PUBLISHED, RESEARCHED, ClaimLost, Task, TaskStore
from kernel.db import make_engine
from tests.fakes.scripted_llm import sample_item

FLOW = (PLANNED, RESEARCHED, DRAFTED, APPROVED, PUBLISHED)
OPEN = FLOW[:-1]
LEASE = timedelta(minutes=2)
WORKERS = ("a", "b", "c")
N_TASKS = 2
T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
MACHINE_SETTINGS = settings(max_examples=20, stateful_step_count=15, deadline=None, derandomize=True,
                            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@dataclass
class Held:
    """The model of one live claim."""

    worker: str
    token: str
    until: datetime


class TaskClaims(RuleBasedStateMachine):
    engine = None  # set per database by the test below

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.store = TaskStore(self.engine, persona=f"p{uuid.uuid4().hex[:10]}", clock=lambda: self.now, lease=LEASE)
        self.status: dict[str, str] = {}
        self.holder: dict[str, Held | None] = {}
        self.hands: dict[str, dict[str, Task]] = {w: {} for w in WORKERS}  # what each worker believes it holds
        self.done_steps: set[tuple[str, str]] = set()  # (task, from status): each step once
        self.order: list[str] = []

    @initialize()
    def create_tasks(self) -> None:
        for i in range(N_TASKS):
            self.now += timedelta(seconds=1)  # distinct created_at: claims take the oldest first
            t = self.store.create(cycle_id="c", items=[sample_item(i + 1)])
            self.status[t.id], self.holder[t.id] = PLANNED, None
            self.order.append(t.id)

    # -- the model's view ------------------------------------------------------------------

    def _free(self) -> list[str]:
        return [tid for tid in self.order if self.status[tid] in OPEN
                and (self.holder[tid] is None or self.holder[tid].until < self.now)]

    def _mine(self, worker: str, tid: str) -> bool:
        held, hand = self.holder[tid], self.hands[worker].get(tid)
        return held is not None and hand is not None and hand.claim.token == held.token

    def _holding(self) -> list[tuple[str, str]]:
        return sorted((w, tid) for w in WORKERS for tid in self.hands[w])

    # -- rules -----------------------------------------------------------------------------------

    @rule(worker=st.sampled_from(WORKERS))
    def claim(self, worker: str) -> None:
        free = self._free()
        t = self.store.claim(OPEN, worker)
        if not free:
            assert t is None
            return
        assert t is not None and t.id == free[0], (t and t.id, free)
        assert t.status == self.status[t.id] and t.claim.worker == worker
        self.holder[t.id] = Held(worker, t.claim.token, self.now + LEASE)
        self.hands[worker][t.id] = t

    @precondition(lambda self: self._holding())
    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        worker, tid = data.draw(st.sampled_from(self._holding()))
        claim = self.hands[worker][tid].claim
        if self._mine(worker, tid):
            assert self.store.renew(claim) == self.now + LEASE
            self.holder[tid].until = self.now + LEASE
        else:
            with pytest.raises(ClaimLost):
                self.store.renew(claim)
            del self.hands[worker][tid]

    @precondition(lambda self: self._holding())
    @rule(data=st.data())
    def step_completes(self, data: st.DataObject) -> None:
        """The worker's step (a model call) returned: it stores the next status, if its claim still stands."""
        worker, tid = data.draw(st.sampled_from(self._holding()))
        task = self.hands[worker][tid]
        nxt = FLOW[FLOW.index(task.status) + 1]
        if not self._mine(worker, tid):
            with pytest.raises(ClaimLost):
                self.store.advance(task, nxt)
            del self.hands[worker][tid]  # the step's result is dropped
            return
        assert task.status == self.status[tid]
        assert (tid, task.status) not in self.done_steps, "a step was done twice"
        stored = self.store.advance(task, nxt)
        self.done_steps.add((tid, task.status))
        self.status[tid] = nxt
        if nxt == PUBLISHED:
            assert stored.claim is None
            self.holder[tid] = None
            del self.hands[worker][tid]
        else:
            self.hands[worker][tid] = stored

    @precondition(lambda self: self._holding())
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        worker, tid = data.draw(st.sampled_from(self._holding()))
        mine = self._mine(worker, tid)
        assert self.store.release(self.hands[worker][tid].claim) is mine
        if mine:
            self.holder[tid] = None
        del self.hands[worker][tid]

    @rule(seconds=st.sampled_from([40, 130]))
    def time_passes(self, seconds: int) -> None:
        """Nobody renews meanwhile: a worker that hung this long past its lease is taken over."""
        self.now += timedelta(seconds=seconds)

    @rule(worker=st.sampled_from(WORKERS))
    def crash(self, worker: str) -> None:
        """The worker dies: it forgets its claims, which stay in the database until their leases end."""
        self.hands[worker] = {}

    # -- invariants ---------------------------------------------------------------------------------

    @invariant()
    def the_store_is_what_the_model_says(self) -> None:
        for t in self.store.list(limit=N_TASKS + 1):
            held = self.holder[t.id]
            assert t.status == self.status[t.id]
            assert t.claimed_by == (held.worker if held else None)
            assert t.lease_until == (held.until if held else None)

    def teardown(self) -> None:
        if not self.status:
            return
        self.now += LEASE + timedelta(seconds=1)  # every lease runs out: nothing stays claimed for ever
        while (t := self.store.claim(OPEN, "z")) is not None:
            while t.status != PUBLISHED:
                assert (t.id, t.status) not in self.done_steps, "a step was done twice"
                self.done_steps.add((t.id, t.status))
                t = self.store.advance(t, FLOW[FLOW.index(t.status) + 1])
                self.status[t.id] = t.status
        assert {t.status for t in self.store.list(limit=N_TASKS + 1)} == {PUBLISHED}
        assert self.done_steps == {(tid, s) for tid in self.order for s in OPEN}  # every step once, none lost


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_task_claims_state_machine(db: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "pg_url")
    engine = make_engine(url)
    TaskStore(engine).migrate()
    TaskClaims.engine = engine
    try:
        run_state_machine_as_test(TaskClaims, settings=MACHINE_SETTINGS)
    finally:
        TaskClaims.engine = None
        engine.dispose()


def test_replay_a_hung_worker_wakes_after_the_takeover(sqlite_url: str) -> None:
    """The machine's core sequence as an ordinary test: claim, hang past the lease, taken over, old write refused."""
    engine = make_engine(sqlite_url)
    TaskStore(engine).migrate()
    TaskClaims.engine = engine
    try:
        m = TaskClaims()
        m.create_tasks()
        m.claim("a")
        m.time_passes(130)
        m.claim("b")
        [(_, first)] = [h for h in m._holding() if h[0] == "b"]
        assert ("a", first) in m._holding()
        m.step_completes(_Draw(("a", first)))  # a's step returns after b took the task: ClaimLost, dropped
        m.step_completes(_Draw(("b", first)))
        m.the_store_is_what_the_model_says()
        m.teardown()
    finally:
        TaskClaims.engine = None
        engine.dispose()


class _Draw:
    """Stands in for st.data() when replaying a sequence by hand."""

    def __init__(self, value):  # noqa: ANN001
        self.value = value

    def draw(self, _strategy):  # noqa: ANN001, ANN202
        return self.value
