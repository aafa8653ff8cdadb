"""The service in-process: pause/resume gate, job error policy, cycle lock, reload, tracing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agents.cycle import CycleContext
from kernel.db import make_engine
from config.loader import ConfigError, Problem
from config.settings import Settings
from daemon import models as daemon_models
from daemon.lock import CycleLock
from daemon.notify import Notifier
from daemon.service import Jobs, PermanentJobError, RetryableJobError, Service, State
from daemon.status import StatusReader
from daemon.tracing import setup_tracing
from daemon.wiring import error_policy
from ledger.budget import Budget
from ledger.funding import deposit
from ledger.journal import Journal

CR = 1_000_000


class Recorder:
    """A cycle that records its calls and optionally spends or fails."""

    def __init__(self, budget_ref: list, spend: int = 0, error: BaseException | None = None):
        self.calls: list[CycleContext] = []
        self.budget_ref = budget_ref
        self.spend = spend
        self.error = error

    def __call__(self, ctx: CycleContext) -> None:
        self.calls.append(ctx)
        if self.error is not None:
            raise self.error
        if self.spend:
            budget = self.budget_ref[0]
            hold = budget.reserve("writer", self.spend, provider="fake", cycle_id=ctx.cycle_id)
            budget.commit(hold, self.spend)


def make_service(db_url: str, tmp_path: Path, cycle, *, settings: Settings | None = None, **kw) -> Service:  # noqa: ANN001
    settings = settings or Settings(state_dir=tmp_path / "state", budget={"min_balance": "1", "resume_balance": "2"},
                                    http={"enabled": False})
    engine = make_engine(db_url)
    journal = Journal(engine)
    journal.migrate()
    daemon_models.migrate(engine)
    budget = Budget(journal, settings.budget, persona=settings.persona)
    if hasattr(cycle, "budget_ref"):
        cycle.budget_ref.append(budget)
    return Service(settings, budget=budget, jobs=kw.pop("jobs", None) or Jobs(cycle=cycle),
                   reader=StatusReader(journal, settings.persona),
                   lock=CycleLock(engine, settings.persona, settings.state_dir),
                   notifier=Notifier({}), policy=error_policy(), **kw)


async def test_cycle_pauses_below_min_balance_and_resumes_at_resume_balance(db_url, tmp_path) -> None:
    cycle = Recorder([], spend=CR)
    svc = make_service(db_url, tmp_path, cycle)
    deposit(svc.journal, 2_500_000)
    await svc.cycle_job()  # 2.5 -> 1.5
    await svc.cycle_job()  # 1.5 -> 0.5
    assert len(cycle.calls) == 2 and svc.state is State.RUNNING
    await svc.cycle_job()  # gate: 0.5 < 1 -> paused, skipped
    assert len(cycle.calls) == 2
    assert svc.state is State.PAUSED and svc.reason.startswith("available 0.500000 < min_balance")
    deposit(svc.journal, CR)  # 1.5: between min and resume, no flapping
    await svc.earnings_job()
    await svc.cycle_job()
    assert svc.state is State.PAUSED and len(cycle.calls) == 2
    deposit(svc.journal, CR)  # 2.5 >= resume_balance: the earnings job resumes the loop
    await svc.earnings_job()
    assert svc.state is State.RUNNING
    await svc.cycle_job()
    assert len(cycle.calls) == 3
    assert "PAUSED" not in svc.status_line() and "balance 1.500000 cr" in svc.status_line()


async def test_stale_chain_data_pauses_whatever_the_balance(db_url, tmp_path) -> None:
    stale = {"reason": "chain data too stale (2 days)"}
    cycle = Recorder([])
    svc = make_service(db_url, tmp_path, cycle, jobs=Jobs(cycle=cycle, pause_reason=lambda: stale["reason"]))
    deposit(svc.journal, 10 * CR)
    await svc.cycle_job()
    assert svc.state is State.PAUSED and svc.reason == "chain data too stale (2 days)" and not cycle.calls
    stale["reason"] = None
    await svc.cycle_job()
    assert svc.state is State.RUNNING and len(cycle.calls) == 1


@pytest.mark.parametrize(("error", "outcome", "exit_code"), [
    (RetryableJobError("rate limited"), "retry", 0),
    (TimeoutError("slow node"), "retry", 0),
    (PermanentJobError("feed is gone"), "failed", 0),
    (KeyError("a bug"), "crashed", 1),
])
async def test_job_error_policy(sqlite_url, tmp_path, error, outcome, exit_code) -> None:
    cycle = Recorder([], error=error)
    svc = make_service(sqlite_url, tmp_path, cycle)
    deposit(svc.journal, 10 * CR)
    await svc.cycle_job()
    errors = svc.reader.recent_errors()
    assert [e.outcome for e in errors] == [outcome]
    assert type(error).__name__ in errors[0].detail
    assert svc.exit_code == exit_code
    assert (svc.state is State.STOPPING) == (exit_code == 1)  # a bug stops the service for a restart


async def test_a_held_cycle_lock_makes_the_other_instance_skip(db_url, tmp_path) -> None:
    cycle = Recorder([])
    svc = make_service(db_url, tmp_path, cycle)
    deposit(svc.journal, 10 * CR)
    other = CycleLock(svc.engine, svc.settings.persona, svc.settings.state_dir)
    assert other.acquire()
    try:
        await svc.cycle_job()
        assert cycle.calls == []
    finally:
        other.release()
    await svc.cycle_job()
    assert len(cycle.calls) == 1


async def test_reload_with_a_broken_config_keeps_the_old_settings(sqlite_url, tmp_path) -> None:
    answers: list = [ConfigError([Problem("schedule.interval_minutes", "must be >= 1", "fix it")], "x.toml")]
    def loader() -> Settings:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    svc = make_service(sqlite_url, tmp_path, Recorder([]), config_loader=loader)
    old = svc.settings
    assert await svc.reload() is False
    assert svc.settings is old and "config reload failed (1 problem(s))" in svc.status_line()
    answers.append(old.model_copy(update={"budget": old.budget.model_copy(update={"min_balance": 0})}))
    assert await svc.reload() is True
    assert svc.budget.settings.min_balance == 0 and "reload failed" not in svc.status_line()


async def test_sigterm_abandons_a_slow_cycle_after_the_grace(sqlite_url, tmp_path) -> None:
    started = asyncio.Event()

    async def slow(ctx: CycleContext) -> None:
        started.set()
        await asyncio.sleep(60)

    svc = make_service(sqlite_url, tmp_path, slow, stop_grace_seconds=0.2)
    deposit(svc.journal, 10 * CR)
    job = asyncio.create_task(svc.cycle_job())
    await started.wait()
    svc.request_stop()
    await asyncio.wait_for(svc.shutdown(), 5)
    assert [e.outcome for e in svc.reader.recent_errors()] == ["abandoned"]
    assert not svc.lock.held
    job.cancel()


async def test_one_trace_per_cycle_with_child_spans(sqlite_url, tmp_path) -> None:
    exporter = InMemorySpanExporter()
    tracer = setup_tracing(Settings(), exporter=exporter)

    async def cycle(ctx: CycleContext) -> None:
        t = trace.get_tracer("agents.test")
        with t.start_as_current_span("research"):
            await asyncio.sleep(0)
        with t.start_as_current_span("write"):
            pass

    def sync_cycle(ctx: CycleContext) -> None:  # a sync cycle runs in a thread: the context follows
        with trace.get_tracer("agents.test").start_as_current_span("publish"):
            pass

    svc = make_service(sqlite_url, tmp_path, cycle, tracer=tracer)
    deposit(svc.journal, 10 * CR)
    await svc.cycle_job()
    svc.jobs.cycle = sync_cycle
    await svc.cycle_job()
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.name == "cycle"]
    assert len(roots) == 2 and all(r.parent is None for r in roots)
    assert roots[0].context.trace_id != roots[1].context.trace_id
    by_trace = {r.context.trace_id: sorted(s.name for s in spans if s.context.trace_id == r.context.trace_id
                                           and s.name != "cycle") for r in roots}
    assert sorted(by_trace.values()) == [["publish"], ["research", "write"]]
    children = [s for s in spans if s.name != "cycle"]
    assert all(s.parent is not None and s.parent.span_id in {r.context.span_id for r in roots} for s in children)
    assert roots[0].attributes["selfpub.persona"] == "default"


async def test_runway_under_the_threshold_stretches_the_cycle_interval(sqlite_url, tmp_path) -> None:
    runway = {"days": 30.0}
    settings = Settings(state_dir=tmp_path / "state", http={"enabled": False},
                        schedule={"interval_minutes": 10, "jitter_seconds": 0, "slow_below_days": 7, "slow_factor": 3})
    svc = make_service(sqlite_url, tmp_path, Recorder([]), settings=settings)
    svc.reader.runway_source = lambda: runway["days"]
    deposit(svc.journal, 10 * CR)
    svc.cadence.run_cycle_at_start = False
    await svc.start()
    try:
        assert svc.cadence.cycle_interval().total_seconds() == 600
        runway["days"] = 5.0
        await svc.earnings_job()
        assert svc.cadence.cycle_interval().total_seconds() == 1800
        runway["days"] = 8.0
        await svc.earnings_job()
        assert svc.cadence.cycle_interval().total_seconds() == 600
    finally:
        await svc.shutdown()


async def test_status_line_shows_the_sustain_tier_when_it_is_not_normal(db_url, tmp_path, notify_listener) -> None:
    from datetime import datetime, timedelta, timezone

    from ledger import TIPS, WALLET, Entry, compute_account, provider_account

    settings = Settings(state_dir=tmp_path / "state", budget={"min_balance": "1", "resume_balance": "2"},
                        http={"enabled": False}, sustain={"enabled": True, "expand_at": "1.5"})
    svc = make_service(db_url, tmp_path, Recorder([]), settings=settings)
    svc.notifier = Notifier({"NOTIFY_SOCKET": notify_listener.path})
    now = datetime.now(timezone.utc)
    deposit(svc.journal, 10 * CR, time=now - timedelta(days=2))

    def tip(key: str, amount: int) -> None:
        svc.journal.post("tip", [Entry(WALLET, amount), Entry(TIPS, -amount)], idempotency_key=key,
                         time=now - timedelta(hours=1))

    async def sent() -> str:  # the STATUS= the daemon sends after a job
        await svc.earnings_job()
        [status] = [m for m in notify_listener.drain() if m.startswith("STATUS=")][-1:]
        assert status == f"STATUS={svc.status_line()}"
        return status

    assert "sustain" not in await sent()  # nothing spent yet: normal, not shown
    svc.journal.post("compute", [Entry(compute_account("writer"), 800_000), Entry(provider_account("x"), -800_000)],
                     idempotency_key="cpu", time=now - timedelta(hours=2))
    tip("t1", 400_000)
    assert " | sustain conserve (0.50) | last cycle " in await sent()
    tip("t2", 1_000_000)
    assert " | sustain expand (1.75) | " in await sent()
    svc.settings = svc.settings.model_copy(update={"sustain": settings.sustain.model_copy(update={"enabled": False})})
    assert "sustain" not in await sent()  # the rule off: the tier stays normal (the page says which it would be)
    svc.engine.dispose()


async def test_a_re_evaluation_asked_during_another_is_answered_not_skipped(db_url, tmp_path) -> None:
    import threading

    # The pause gate's first read after the pause is slow (a loaded machine) and sees the chain data
    # still stale; the chain catches up while it runs, and a reload (or a deposit, or /healthz) asks again.
    entered, release, reads = threading.Event(), threading.Event(), []

    def pause_reason() -> str | None:
        reads.append(len(reads))
        if len(reads) == 1:
            return "chain data too stale (2 days)"  # the cycle job's gate: paused
        if len(reads) == 2:
            entered.set()
            release.wait(10)
            return "chain data too stale (2 days)"  # read before the chain caught up
        return None

    cycle = Recorder([])
    svc = make_service(db_url, tmp_path, cycle, jobs=Jobs(cycle=cycle, pause_reason=pause_reason))
    deposit(svc.journal, 10 * CR)
    await svc.cycle_job()
    assert svc.state is State.PAUSED and not cycle.calls
    slow = asyncio.create_task(svc.reevaluate())  # a heartbeat's
    await asyncio.to_thread(entered.wait, 10)
    asked = asyncio.create_task(svc.reevaluate())  # the reload's, while the heartbeat's still reads
    await asyncio.sleep(0.05)
    assert not asked.done()  # it waits for the evaluation in flight instead of returning unanswered
    release.set()
    await asyncio.gather(slow, asked)
    assert svc.state is State.RUNNING and len(reads) == 3
    svc.engine.dispose()
