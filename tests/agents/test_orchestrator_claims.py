"""The orchestrator under claims and the cycle context: lease heartbeat, lost claims, stop flag, deadline, pricing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from agents.cycle import CycleContext, Gate
from agents.orchestrator import BUDGET_LIMITED, STOPPED
from agents.tasks import DRAFTED, IN_PROGRESS, PLANNED, PUBLISHED, RESEARCHED, TaskStore
from daemon.cycle import PAUSED, run_admitted
from daemon.lock import CycleLock
from tests.agents.test_orchestrator_cycle import Rig, sq_engine  # noqa: F401 - the fixture
from tests.fakes.scripted_llm import sample_brief

LEASE = timedelta(seconds=0.6)


class SlowResearch:
    """The research step, taking `seconds` of wall time (a slow model); `during` runs while it waits."""

    def __init__(self, inner, seconds: float, during=None):  # noqa: ANN001
        self.inner, self.seconds, self.during = inner, seconds, during
        self.calls = 0

    async def brief(self, items, **kw):  # noqa: ANN001, ANN003, ANN201
        self.calls += 1
        brief = await self.inner.brief(items, **kw)  # the model answered (and was paid); now it is slow to return
        if self.during is not None:
            await asyncio.sleep(self.seconds / 2)
            await asyncio.to_thread(self.during)
            await asyncio.sleep(self.seconds / 2)
        else:
            await asyncio.sleep(self.seconds)
        return brief


def real_time_tasks(rig: Rig) -> TaskStore:
    """The rig's task table on the wall clock with a short lease (the heartbeat is real time)."""
    rig.tasks = TaskStore(rig.tasks.engine, lease=LEASE)
    return rig.tasks


async def test_scenario_12_a_step_longer_than_the_lease_keeps_its_claim_by_renewing_it(sq_engine):
    rig = Rig(sq_engine)
    tasks = real_time_tasks(rig)
    intruder = TaskStore(sq_engine, lease=LEASE)
    grabbed = []
    rig.research = SlowResearch(rig.research, 4 * LEASE.total_seconds(),
                                during=lambda: grabbed.append(intruder.claim(IN_PROGRESS, "intruder")))
    orchestrator = rig.orchestrator()
    orchestrator.deps.heartbeat_seconds = LEASE.total_seconds() / 4
    report = await orchestrator.run_cycle(CycleContext.start(rig.clock[0]))
    assert grabbed == [None]  # two leases into the step, the claim was still live: nobody could take it
    assert report.published == 1 and report.lost == 0 and report.errors == []
    [task] = tasks.list()
    assert task.status == PUBLISHED and rig.research.calls == 1


async def test_scenario_12_a_step_whose_claim_was_taken_over_writes_nothing(sq_engine):
    rig = Rig(sq_engine)
    real_time_tasks(rig)
    intruder = TaskStore(sq_engine, lease=timedelta(minutes=5))
    taken = []

    def take_over() -> None:  # the worker hung (no heartbeat) past its lease: another one takes the task
        t = intruder.claim(IN_PROGRESS, "intruder")
        t.messages.brief = sample_brief()
        taken.append(intruder.advance(t, RESEARCHED, reason="researched by the intruder"))

    rig.research = SlowResearch(rig.research, 3 * LEASE.total_seconds(), during=take_over)
    orchestrator = rig.orchestrator()
    orchestrator.deps.heartbeat_seconds = 3600  # a hung worker renews nothing
    report = await orchestrator.run_cycle(CycleContext.start(rig.clock[0]))
    assert report.lost == 1 and "lost" in report.errors[0]
    assert report.researched == 0 and report.drafted == 0  # the step ran, its result was dropped, nothing followed
    [task] = rig.tasks.list()
    assert (task.status, task.claimed_by) == (RESEARCHED, "intruder")
    assert task.reasons == ["researched by the intruder"] and task.updated_at == taken[0].updated_at
    assert rig.roles() == ["research"] and rig.channel.posts == []


async def test_sigterm_during_a_step_stops_the_cycle_at_the_next_step_boundary(sq_engine):
    rig = Rig(sq_engine)
    ctx = CycleContext.start(rig.clock[0])
    rig.research = SlowResearch(rig.research, 0.2, during=ctx.stop.set)
    report = await rig.orchestrator().run_cycle(ctx)
    assert report.state == STOPPED and "stop requested" in report.reason
    [task] = rig.tasks.list()
    assert task.status == RESEARCHED and task.claimed_by is None  # stored, and given back for the next cycle
    assert rig.roles() == ["research"]
    report = await rig.cycle()
    assert report.resumed == 1 and report.published == 1 and rig.roles() == ["research", "writer", "critic"]


async def test_a_passed_deadline_lets_each_task_take_one_step_then_stops(sq_engine):
    rig = Rig(sq_engine, items=2)
    ctx = CycleContext.start(rig.clock[0], deadline=rig.clock[0] - timedelta(seconds=1))
    report = await rig.orchestrator().run_cycle(ctx)
    assert report.state == STOPPED and "deadline" in report.reason
    assert sorted(t.status for t in rig.tasks.list()) == [RESEARCHED, RESEARCHED]
    assert report.published == 0


async def test_a_stop_before_the_cycle_plans_nothing(sq_engine):
    rig = Rig(sq_engine)
    ctx = CycleContext.start(rig.clock[0])
    ctx.stop.set()
    report = await rig.orchestrator().run_cycle(ctx)
    assert report.state == STOPPED and rig.tasks.list() == [] and rig.provider.history == []


async def test_a_pause_set_mid_cycle_stops_the_next_step_naming_the_budgets_own_limit(sq_engine):
    rig = Rig(sq_engine)
    stale = Gate(rig.budget, lambda: "chain data too stale: last successful sync is old")
    rig.research = SlowResearch(rig.research, 0.1, during=stale.check)  # the daemon's gate pauses meanwhile
    report = await rig.orchestrator().run_cycle(CycleContext.start(rig.clock[0]))
    assert report.state == BUDGET_LIMITED and report.budget_limit == "paused"
    [task] = rig.tasks.list()
    assert task.status == RESEARCHED and "budget: paused reached" in task.reasons[-1]
    assert rig.roles() == ["research"]


async def test_a_paused_budget_admits_no_cycle_and_says_why(sq_engine, tmp_path):
    rig = Rig(sq_engine, funds=0)
    lock = CycleLock(sq_engine, "default", tmp_path)
    done = await run_admitted(Gate(rig.budget), lock, rig.orchestrator().run_cycle, CycleContext.start(rig.clock[0]))
    assert done.admission.outcome == PAUSED and "min_balance" in done.admission.reason and done.result is None
    assert rig.provider.history == [] and rig.tasks.list() == [] and not lock.held


async def test_the_cycle_runs_under_the_callers_cycle_id(sq_engine):
    rig = Rig(sq_engine)
    ctx = CycleContext.start(rig.clock[0])
    report = await rig.orchestrator().run_cycle(ctx)
    assert report.cycle_id == ctx.cycle_id and {c.cycle_id for c in rig.calllog.calls()} == {ctx.cycle_id}
    assert rig.budget.cycle_spent(ctx.cycle_id) == report.cost > 0


def test_claims_of_a_killed_cycle_resume_with_the_stable_worker(sq_engine):
    """The worker id of a persona's cycle is the same for the daemon and `selfpub cycle`."""
    from agents.orchestrator import cycle_worker

    assert cycle_worker("alice") == cycle_worker("alice") != cycle_worker("bob")


@pytest.mark.parametrize("runway_days", [None, 3.0, 40.0])
async def test_the_worst_case_estimate_comes_from_the_llm_rooms_pricing_with_tiers(sq_engine, make_llm, runway_days):
    from agents.llm.pricing import PLANNING_PROMPT_TOKENS, cost
    from config.settings import AgentSettings, AgentsSettings, ModelPrice
    from tests.agents.conftest import FAKE_MODEL, FAKE_PRICE, FAKE_URL

    rich = ModelPrice(input_per_million="40", output_per_million="120", provider="fake")
    writer = AgentSettings(base_url=FAKE_URL, model=FAKE_MODEL, max_tokens=500,
                           tiers=[{"min_runway_days": 30, "model": "rich-model"}])
    base = AgentSettings(base_url=FAKE_URL, model=FAKE_MODEL)
    agents = AgentsSettings(orchestrator=base, research=base, writer=writer, critic=base)
    orchestrator = Rig(sq_engine).orchestrator()
    orchestrator.deps.llm = make_llm(agents, {FAKE_MODEL: FAKE_PRICE, "rich-model": rich}, runway=lambda: runway_days)
    # no prices in the settings: the estimate must come from the LLM room, tiers included
    orchestrator.settings = orchestrator.settings.model_copy(update={"agents": agents, "prices": {}})
    price = rich if runway_days == 40.0 else FAKE_PRICE
    assert orchestrator.call_estimate("writer") == cost(price, PLANNING_PROMPT_TOKENS, 500) > 0


@pytest.mark.parametrize(("over", "limit"), [
    ({"per_cycle_cap": 3_000_000, "items": 3}, "per_cycle_cap"),  # 3 credits a cycle
    ({"funds": 3_000_000, "items": 3}, "available"),  # 3 credits in the wallet
])
async def test_a_plan_the_budget_lowers_names_the_budgets_limit(sq_engine, over, limit):
    rig = Rig(sq_engine, **over)
    orchestrator = rig.orchestrator()
    per_item = orchestrator.item_estimate()
    assert 0 < per_item <= 3_000_000 < 3 * per_item  # the headroom fits fewer than the 3 items asked for
    report = await orchestrator.run_cycle(CycleContext.start(rig.clock[0]), dry_run=True)
    assert report.budget_limit == limit and orchestrator.plan_limit == limit
    assert any(f"(limit {limit}) fits" in e for e in report.explanations)
    assert f"budget limit {limit}" in report.summary()


async def test_a_plan_the_budget_does_not_lower_names_no_limit(sq_engine):
    report = await Rig(sq_engine).cycle(dry_run=True)
    assert report.budget_limit is None and "budget limit" not in report.summary()
