"""The outbox as a state machine, on SQLite and the real PostgreSQL.

Three processes (two on this host, one on another) deliver one post through
their own Outbox on one database, against a model of the platform: `Remote`
records what exists there and finds a post by our marker (its key) only.
Every remote call is held open until a rule answers it, and every timer
(lease renewals, backoffs, busy polls) runs on a shared fake clock, so
Hypothesis chooses the interleaving:

    start(p, outcomes)   p runs deliver(); its sends will end ok | timeout_after (created,
                         answer lost) | timeout_before (nothing created) | refused (422)
    answer(p)            the platform answers p's pending call (a look-up may time out)
    advance(s)           the clock moves; due timers of running processes fire
    stall(p, s)          p stalls (no timers, no answers) while s seconds pass for the others,
                         then wakes: its lease may have lapsed and been taken over meanwhile
    crash(p)             p dies (it never writes again; its host sees it is gone) and a new
                         process takes its slot

The platform takes a request when it is sent (a call's effect lands before
its lease could lapse: see the limits in publishers/outbox.py).

Invariants, after every rule:
  - at most one remote post per idempotency key;
  - a `done` row names the remote post that carries its key, and stays so;
  - the row's claim token is the last one granted (or none), and a claim was
    granted only when the row was free, its lease expired or its holder dead;
  - a holder whose token was taken over never writes (every write by a token
    that is no longer current is a failure, and no row change goes unexplained);
  - a row claimed in `sent` is looked up before anything is sent again.
At the end every process dies, the leases run out, and a fresh process
finishes the post: exactly one remote post, named by a `done` row.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlmodel import Session, select

from publishers.models import DONE, SENT, OutboxRow
from publishers.outbox import Claim, Outbox
from publishers.protocol import PermanentError, Post, Published, PublishError, RetryableError

LEASE_SECONDS = 60.0
T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)
SLOTS = (("a", "host-1"), ("b", "host-1"), ("c", "host-2"))
OUTCOMES = ("ok", "timeout_after", "timeout_before", "refused")
MACHINE_SETTINGS = settings(max_examples=60, stateful_step_count=30, deadline=None, derandomize=True,
                            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
_pids = itertools.count(100)
PICK = st.integers(0, len(SLOTS) - 1)  # which of the processes a rule applies to (among those it can apply to)


def _pick(candidates: list, i: int):  # noqa: ANN202
    return candidates[i % len(candidates)]


class Killed(BaseException):
    """The process is dead: it can no longer touch the database."""


@dataclass
class Remote:
    """What exists at the platform, by idempotency key (the marker)."""

    posts: dict[str, list[Published]] = field(default_factory=dict)
    made: int = 0

    def create(self, key: str) -> Published:
        self.made += 1
        post = Published("devto", str(1000 + self.made), f"https://dev.example/p/{self.made}", {"published": "true"})
        self.posts.setdefault(key, []).append(post)
        return post

    def find(self, key: str) -> Published | None:
        found = self.posts.get(key) or []
        return found[0] if found else None


@dataclass
class Pending:
    """A remote call waiting for its answer."""

    kind: str  # publish | lookup
    future: asyncio.Future
    value: Any = None  # publish: (outcome, created post or None); lookup: the answer as of the call


class Proc:
    """One process: its Outbox, its timers, and its Publisher seam to the platform (`name` is the platform's)."""

    name = "devto"

    def __init__(self, machine: OutboxMachine, label: str, host: str):
        self.m = machine
        self.label = label
        self.host = host
        self.owner = f"{host}/boot/ns/{next(_pids)}/1"
        self.dead = False
        self.paused = False
        self.task: asyncio.Task | None = None
        self.timers: list[tuple[datetime, asyncio.Future]] = []
        self.pending: Pending | None = None
        self.outcomes: list[str] = []
        self.claim_status: str | None = None
        self.stalled = False  # paused since its last claim: the one way a living holder may lose its lease
        self.looked_up = False
        self.outbox = ProcOutbox(self)

    async def sleep(self, seconds: float) -> None:
        fut = self.m.loop.create_future()
        self.timers.append((self.m.now + timedelta(seconds=seconds), fut))
        await fut

    # -- the Publisher protocol --------------------------------------------------------------

    async def publish(self, post: Post) -> Published:
        assert not (self.claim_status == SENT and not self.looked_up), (
            f"{self.label} sends a post whose row was claimed in `sent` without looking it up first")
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        created = self.m.remote.create(post.key) if outcome in ("ok", "timeout_after") else None
        return await self._wait(Pending("publish", self.m.loop.create_future(), (outcome, created)))

    async def find_existing(self, idempotency_key: str, post: Post) -> Published | None:
        self.looked_up = True
        return await self._wait(Pending("lookup", self.m.loop.create_future(), self.m.remote.find(idempotency_key)))

    async def metrics(self, published: Any) -> list:  # noqa: ANN401
        return []

    async def _wait(self, pending: Pending) -> Any:  # noqa: ANN401
        self.pending = pending
        try:
            return await pending.future
        finally:
            self.pending = None


class ProcOutbox(Outbox):
    """The real Outbox, with each database step checked against the model (and refused once dead)."""

    def __init__(self, proc: Proc):
        m = proc.m
        super().__init__(m.engine, sleep=proc.sleep, renew_sleep=proc.sleep, clock=lambda: m.now, owner=proc.owner,
                         is_dead=lambda owner: m.seen_dead(proc, owner), lease_seconds=LEASE_SECONDS, busy_wait=90.0,
                         busy_poll=5.0)
        self.proc = proc

    def _alive(self) -> None:
        if self.proc.dead:
            raise Killed(self.proc.label)

    def _ensure_row(self, post: Post, platform: str) -> OutboxRow:
        self._alive()
        return super()._ensure_row(post, platform)

    def _row(self, key: str, platform: str) -> OutboxRow | None:
        self._alive()
        return super()._row(key, platform)

    def claim(self, row: OutboxRow) -> Claim | None:
        self._alive()
        m = self.proc.m
        before = m.row()
        got = super().claim(row)
        if got is not None:
            until = before.lease_until
            free = before.claim_token is None or (until is not None and until <= m.now) or m.seen_dead(
                self.proc, before.claim_owner)
            assert free, f"{self.proc.label} took a live claim held by {before.claim_owner}"
            running = [p for p in m._all if p.owner == before.claim_owner and not p.dead and not p.stalled]
            assert not running, f"{self.proc.label} took the claim of {before.claim_owner}, which was running (renewals?)"
            m.current_token = got.token
            m.explained = True
            self.proc.claim_status, self.proc.looked_up, self.proc.stalled = got.status, False, False
        return got

    def _update(self, claim: Claim, **values: Any) -> bool:  # noqa: ANN401
        self._alive()
        m = self.proc.m
        ok = super()._update(claim, **values)
        if ok:
            assert claim.token == m.current_token, f"{self.proc.label} wrote with a token that was taken over"
            m.explained = True
        else:
            m.fenced.append((self.proc.label, values.get("status", "renew/release")))
        return ok


class OutboxMachine(RuleBasedStateMachine):
    engine = None  # set per database by the tests below

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.now = T0
        self.remote = Remote()
        self.key = f"k-{uuid.uuid4().hex[:12]}"
        self.post = Post(key=self.key, title="Same title as an older post", body_markdown="b", bsky_text="s")
        self.procs = [self._proc(name, host) for name, host in SLOTS]
        self.current_token: str | None = None
        self.explained = False
        self.last_row: tuple | None = None
        self.done_as: str | None = None
        self.fenced: list[tuple[str, str]] = []  # (process, what it tried to write) for every refused write

    def _proc(self, label: str, host: str) -> Proc:
        return Proc(self, label, host)

    # -- the model's helpers ---------------------------------------------------------------------

    def seen_dead(self, asker: Proc, owner: str | None) -> bool:
        """Whether `asker` can prove `owner` dead: only a dead process on its own host."""
        return any(p.dead and p.owner == owner and p.host == asker.host for p in self._all)

    @property
    def _all(self) -> list[Proc]:
        return self.procs + getattr(self, "_gone", [])

    def row(self) -> OutboxRow | None:
        with Session(self.engine) as s:
            return s.exec(select(OutboxRow).where(OutboxRow.key == self.key)).first()

    def _settle(self) -> None:
        """Run every runnable coroutine until all wait on a timer or a remote answer."""

        async def spin() -> None:
            for _ in range(30):
                await asyncio.sleep(0)

        self.loop.run_until_complete(spin())
        for p in self._all:
            if p.task is not None and p.task.done():
                exc = p.task.exception()
                if exc is not None and not isinstance(exc, (PublishError, Killed)):
                    raise exc  # a bug, not an outcome the outbox may report
                p.task = None

    def _run_until(self, target: datetime) -> None:
        """Fire the timers of running processes in deadline order (the clock stops at each), up to `target`."""
        while True:
            due = sorted(((t[0], n, p, t) for n, p in enumerate(self._all) if not p.dead and not p.paused
                          for t in p.timers if t[0] <= target), key=lambda d: (d[0], d[1]))
            if not due:
                break
            deadline, _, p, timer = due[0]
            self.now = max(self.now, deadline)
            p.timers.remove(timer)
            if not timer[1].done():
                timer[1].set_result(None)
            self._settle()
        self.now = max(self.now, target)

    def _step(self, seconds: float = 0.0) -> None:
        self._settle()
        self._run_until(self.now + timedelta(seconds=seconds))

    # -- rules ---------------------------------------------------------------------------------------

    @precondition(lambda self: any(p.task is None and not p.dead for p in self.procs))
    @rule(i=PICK, outcomes=st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=2))
    def start(self, i: int, outcomes: list[str]) -> None:
        p = _pick([p for p in self.procs if p.task is None and not p.dead], i)
        p.outcomes = list(outcomes)
        p.task = self.loop.create_task(p.outbox.deliver(p, self.post, attempts=2))
        self._step()

    @precondition(lambda self: any(p.pending and not p.paused and not p.dead for p in self.procs))
    @rule(i=PICK, lookup_ok=st.booleans())
    def answer(self, i: int, lookup_ok: bool) -> None:
        p = _pick([p for p in self.procs if p.pending and not p.paused and not p.dead], i)
        call = p.pending
        if call.kind == "lookup":
            if lookup_ok:
                call.future.set_result(call.value)
            else:
                call.future.set_exception(RetryableError("devto", "timeout on GET /api/articles/me/all"))
        else:
            outcome, created = call.value
            if outcome == "ok":
                call.future.set_result(created)
            elif outcome == "refused":
                call.future.set_exception(PermanentError("devto", "Title can't be blank", status=422))
            else:
                call.future.set_exception(RetryableError("devto", f"{outcome} on POST /api/articles"))
        self._step()

    # Time passes timer by timer: a running holder renews (every 15 s) before its 60 s lease lapses,
    # so only a stalled or dead holder ever loses its claim.
    @rule(seconds=st.sampled_from([0.5, 1, 5, 16, 40, 70]))
    def advance(self, seconds: float) -> None:
        self._step(seconds)

    @precondition(lambda self: any(not p.dead and p.task for p in self.procs))
    @rule(i=PICK, seconds=st.sampled_from([5, 40, 70, 130]))
    def stall(self, i: int, seconds: float) -> None:
        """One process stalls (GC pause, SIGSTOP, swapped out) while the others and the clock go on."""
        p = _pick([p for p in self.procs if not p.dead and p.task], i)
        p.paused = p.stalled = True
        self._step(seconds)
        p.paused = False
        self._step()

    @rule(i=PICK)
    def crash(self, i: int) -> None:
        """A process dies (its host sees it gone); a new process takes its slot."""
        p = self.procs[i]
        p.dead = True
        self._gone = [*getattr(self, "_gone", []), p]
        self.procs[i] = self._proc(p.label, p.host)
        self._step()

    # -- invariants -----------------------------------------------------------------------------------

    @invariant()
    def at_most_one_remote_post(self) -> None:
        assert len(self.remote.posts.get(self.key, [])) <= 1, self.remote.posts

    @invariant()
    def row_matches_the_model(self) -> None:
        row = self.row()
        if row is None:
            return
        assert row.claim_token in (None, self.current_token)
        if row.status == DONE:
            carrying = self.remote.find(self.key)
            assert carrying is not None and row.remote_id == carrying.remote_id, (row.remote_id, carrying)
            assert self.done_as in (None, row.remote_id)
            self.done_as = row.remote_id
        else:
            assert self.done_as is None, "a done row changed status"
        state = (row.status, row.attempts, row.remote_id, row.claim_token, row.claim_owner, row.lease_until, row.last_error)
        if self.last_row is not None and state != self.last_row:
            assert self.explained, f"the row changed with no write by its current holder: {self.last_row} -> {state}"
        self.last_row, self.explained = state, False

    def teardown(self) -> None:
        try:
            self._finish_with_a_fresh_process()
        finally:
            for p in self._all:
                p.dead = True
                if p.task is not None:
                    p.task.cancel()
            tasks = [p.task for p in self._all if p.task is not None]
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.close()

    def _finish_with_a_fresh_process(self) -> None:
        for p in self.procs:
            p.dead = True
        self.now += timedelta(seconds=LEASE_SECONDS + 1)
        fresh = self._proc("fresh", "host-1")
        self.procs.append(fresh)
        fresh.outcomes = ["ok"]
        fresh.task = self.loop.create_task(fresh.outbox.deliver(fresh, self.post, attempts=1))
        for _ in range(4):
            self._settle()
            if fresh.pending is not None:
                fresh.pending.future.set_result(
                    fresh.pending.value if fresh.pending.kind == "lookup" else fresh.pending.value[1])
        self._settle()
        assert fresh.task is None, "the fresh process did not finish"
        row = self.row()
        posts = self.remote.posts.get(self.key, [])
        assert row.status == DONE and len(posts) == 1 and row.remote_id == posts[0].remote_id, (row.status, posts)


def _run(engine: Any) -> None:  # noqa: ANN401
    from publishers.outbox import Outbox as Real

    Real(engine).migrate()
    OutboxMachine.engine = engine
    try:
        run_state_machine_as_test(OutboxMachine, settings=MACHINE_SETTINGS)
    finally:
        OutboxMachine.engine = None


def test_outbox_machine(engine):
    """SQLite and PostgreSQL (the `engine` fixture runs both)."""
    _run(engine)


@pytest.fixture(autouse=True)
def _quiet_outbox_logs(caplog):  # the machine takes claims over by the hundred: keep the report readable
    caplog.set_level("ERROR", logger="publishers.outbox")


def _replay(engine: Any, steps: list[tuple[str, dict]]) -> OutboxMachine:  # noqa: ANN401
    """Run one sequence of rules (with the invariants after each) and the final check."""
    from publishers.outbox import Outbox as Real

    Real(engine).migrate()
    OutboxMachine.engine = engine
    m = OutboxMachine()
    try:
        for name, args in steps:
            getattr(m, name)(**args)
            for check in (m.at_most_one_remote_post, m.row_matches_the_model):
                check()
    finally:
        m.teardown()
        OutboxMachine.engine = None
    return m


def test_a_stalled_holder_wakes_after_the_takeover_and_writes_nothing(engine):
    """a sends and stalls past its lease; b takes over by look-up and finishes; a's late answer is fenced out."""
    m = _replay(engine, [
        ("start", {"i": 0, "outcomes": ["ok"]}),      # a claims, marks sent, its request reaches the platform
        ("start", {"i": 1, "outcomes": ["ok"]}),      # b waits for a's live claim
        ("stall", {"i": 0, "seconds": 70}),           # a stalls, its lease lapses, b takes over and looks up;
                                                      # a wakes: its renewal is refused
        ("answer", {"i": 1, "lookup_ok": True}),      # b finds a's post and completes the row
        ("answer", {"i": 0, "lookup_ok": True}),      # a's answer arrives: its completion is fenced out
        ("advance", {"seconds": 1}),                  # a retries: the row is done, a returns b's result
    ])
    assert len(m.remote.posts[m.key]) == 1
    assert ("a", "renew/release") in m.fenced and ("a", DONE) in m.fenced  # a's renewal and completion were refused
