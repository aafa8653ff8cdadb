"""The sustain rule in a real cycle: items per cycle and the model each role calls follow the tier; idle is free.

A real ledger, task store and MeteredLLM (router, meter, call log); only the provider is scripted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from agents.critic import Critic
from agents.cycle import CycleContext
from agents.llm import MeteredLLM
from agents.llm.calllog import CallLog
from agents.llm.provider import Request
from agents.orchestrator import Candidate, Orchestrator, OrchestratorDeps
from agents.sustain import SustainRule
from agents.tasks import PUBLISHED, TaskStore
from agents.writer import Writer
from config.settings import BudgetSettings, ResearchSettings, ReviewSettings, Settings, SustainSettings
from kernel.db import make_engine
from ledger import TIPS, WALLET, Entry, compute_account, provider_account
from ledger.budget import Budget
from ledger.funding import deposit
from ledger.journal import Journal
from ledger.reads import spend_by_model
from ledger.sustain import CONSERVE, EXPAND, NORMAL
from tests.fakes.scripted_llm import (
    SCRIPTED_PRICE, SCRIPTED_URL, BriefingResearcher, ListFeed, RecordingChannel, ScriptedProvider, sample_brief,
    sample_item, scripted_agents, scripted_prices, writer_reply,
)

CREDIT = 1_000_000
NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
CHEAP, BEST = "scripted-writer+cheap", "scripted-writer+best"
CHEAP_CRITIC = "scripted-critic+cheap"


@dataclass
class TierProvider(ScriptedProvider):
    """The scripted provider, also answering a role's tier models ("scripted-<role>+<tier>"), noting each model."""

    models: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, request: Request):  # noqa: ANN201
        role = request.model.removeprefix("scripted-").split("+")[0]
        self.models.append((role, request.model))
        return await super().send(replace(request, model=f"scripted-{role}"))


async def _no_sleep(_: float) -> None:
    return None


class SustainRig:
    """One persona's cycle with the sustain rule wired as the daemon wires it (wiring_agents.build_deps)."""

    def __init__(self, engine, *, enabled: bool = True, items: int = 2, candidates: int = 8):
        self.settings = Settings(
            agents=scripted_agents(),
            prices={**scripted_prices(), CHEAP: SCRIPTED_PRICE, BEST: SCRIPTED_PRICE, CHEAP_CRITIC: SCRIPTED_PRICE},
            budget=BudgetSettings(per_cycle_cap="50", daily_cap="500", min_balance="1", resume_balance="2"),
            research=ResearchSettings(items_per_cycle=items),
            review=ReviewSettings(max_revisions=0, min_score=6),
            sustain=SustainSettings(enabled=enabled, conserve_items_per_cycle=1, expand_items_per_cycle=4,
                                    conserve_models={"writer": CHEAP, "critic": CHEAP_CRITIC},
                                    expand_models={"writer": BEST}),
        )
        self.journal = Journal(engine)
        self.journal.migrate()
        deposit(self.journal, 100 * CREDIT, idempotency_key="fund", time=NOW - timedelta(days=5))
        clock = lambda: NOW  # noqa: E731
        self.budget = Budget(self.journal, self.settings.budget, clock=clock)
        self.tasks = TaskStore(engine, clock=clock)
        self.tasks.migrate()
        self.calllog = CallLog(engine)
        self.calllog.migrate()
        self.engine = engine
        self.rule = SustainRule(self.journal, self.settings.sustain, clock=clock)
        self.provider = TierProvider()
        self.llm = MeteredLLM(self.settings.agents, self.settings.prices, self.budget, {SCRIPTED_URL: self.provider},
                              log_to=self.calllog, sleep=_no_sleep, sustain_model=self.rule.model)
        self.provider.default = {"research": sample_brief().model_dump(mode="json"), "writer": writer_reply(),
                                 "critic": {"score": 8, "problems": [], "fixes": []}}
        self.items = [Candidate(sample_item(i), novelty=0.9) for i in range(1, candidates + 1)]
        self.feed = ListFeed(self.items)
        self.channel = RecordingChannel()
        self.clock = clock

    def book(self, key: str, *, income: int = 0, cost: int = 0, ago: timedelta = timedelta(hours=1)) -> None:
        """History before the cycle: a tip of `income` and compute of `cost` (ucr), `ago` before now."""
        when = NOW - ago
        if income:
            self.journal.post("tip", [Entry(WALLET, income), Entry(TIPS, -income)], idempotency_key=f"{key}-in",
                              time=when)
        if cost:
            self.journal.post("compute", [Entry(compute_account("writer"), cost), Entry(provider_account("x"), -cost)],
                              idempotency_key=f"{key}-out", time=when)

    def orchestrator(self) -> Orchestrator:
        return Orchestrator(OrchestratorDeps(
            settings=self.settings, llm=self.llm, budget=self.budget, journal=self.journal, tasks=self.tasks,
            research=BriefingResearcher(self.llm), feed=self.feed, writer=Writer(self.llm),
            critic=Critic(self.llm, self.settings.review), channel=self.channel, clock=self.clock,
            rng=random.Random(3), sustain=self.rule,
        ))

    async def cycle(self):  # noqa: ANN201
        return await self.orchestrator().run_cycle(CycleContext.start(NOW))

    def models(self, role: str) -> set[str]:
        return {m for r, m in self.provider.models if r == role}

    def transactions(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(text("SELECT COUNT(*) FROM ledger_txn")).scalar_one())

    def calls_logged(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(text("SELECT COUNT(*) FROM llm_call")).scalar_one())


@pytest.fixture
def engine(sqlite_url: str):  # noqa: ANN201
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


# income, cost (ucr) in the window -> items planned, writer's model, critic's model
CASES = {
    CONSERVE: (400_000, 1_200_000, 1, CHEAP, CHEAP_CRITIC),
    NORMAL: (1_500_000, 1_000_000, 2, "scripted-writer", "scripted-critic"),
    EXPAND: (2_000_000, 1_000_000, 4, BEST, "scripted-critic"),  # exactly at the bar; the critic has no better model
}


@pytest.mark.parametrize("tier", list(CASES))
async def test_items_and_models_follow_the_tier(engine, tier: str) -> None:
    income, cost, items, writer_model, critic_model = CASES[tier]
    rig = SustainRig(engine)
    rig.book("recent", income=income, cost=cost)
    # Outside the 24 h window: income that would make every tier expand if the window let it in.
    rig.book("old", income=500 * CREDIT, cost=90 * CREDIT, ago=timedelta(hours=30))

    report = await rig.cycle()

    assert report.sustain == tier
    assert report.planned == items and report.published == items
    assert rig.models("writer") == {writer_model}
    assert rig.models("critic") == {critic_model}
    assert rig.models("research") == {"scripted-research"}
    assert any(e.startswith(f"sustain {tier}: ") and e.endswith(f": {items} item(s)") for e in report.explanations)
    # The ledger books the spend under the model actually called.
    assert writer_model in spend_by_model(rig.journal, since=NOW - timedelta(minutes=1))
    assert f"sustain {tier}" in report.summary()


async def test_the_tier_moves_when_income_arrives(engine) -> None:
    rig = SustainRig(engine)
    rig.book("spend", cost=CREDIT)
    first = await rig.cycle()
    assert (first.sustain, first.planned) == (CONSERVE, 1)
    assert rig.models("writer") == {CHEAP}

    # A tip large enough for income / cost >= 2.0 over the window, including the first cycle's own spend.
    rig.book("tip", income=10 * CREDIT, ago=timedelta(minutes=1))
    rig.provider.models.clear()
    rig.feed.add(*rig.items)  # the feed again: the item worked on is known, the rest are new
    second = await rig.cycle()
    assert (second.sustain, second.planned) == (EXPAND, 4)
    assert rig.models("writer") == {BEST}


async def test_no_cost_yet_is_normal_and_says_so(engine) -> None:
    rig = SustainRig(engine)
    rig.book("tip", income=3 * CREDIT)  # income but no spend: too little history, never expand
    report = await rig.cycle()
    assert (report.sustain, report.planned) == (NORMAL, 2)
    assert rig.models("writer") == {"scripted-writer"}
    assert any("too little history" in e for e in report.explanations)


async def test_the_rule_off_keeps_the_normal_plan_and_models(engine) -> None:
    rig = SustainRig(engine, enabled=False)
    rig.book("spend", cost=5 * CREDIT)  # would conserve
    report = await rig.cycle()
    assert (report.sustain, report.planned) == (NORMAL, 2)
    assert rig.models("writer") == {"scripted-writer"}
    assert any("the sustain rule is off" in e for e in report.explanations)


@pytest.mark.parametrize("tier", [CONSERVE, NORMAL, EXPAND])
async def test_idle_cycle_makes_no_llm_call_and_books_nothing(engine, tier: str) -> None:
    """No new item: the cycle plans nothing, calls no model, reserves and books nothing, in every tier."""
    income, cost, *_ = CASES[tier]
    rig = SustainRig(engine, candidates=2)
    rig.book("history", income=income, cost=cost)
    rig.feed.pending = []  # nothing new at all
    before, calls = rig.transactions(), rig.calls_logged()
    empty = await rig.cycle()
    assert (empty.sustain, empty.planned, empty.cost) == (tier, 0, 0)
    assert rig.provider.history == [] and rig.calls_logged() == calls
    assert rig.transactions() == before

    # Items already worked on come back from the feed: still nothing new, still free.
    rig.feed.add(*rig.items)
    worked = await rig.cycle()
    assert worked.published >= 1
    before, calls, history = rig.transactions(), rig.calls_logged(), len(rig.provider.history)
    rig.feed.add(*[Candidate(item, novelty=0.9) for item in rig.feed.covered])
    again = await rig.cycle()
    assert (again.planned, again.resumed, again.cost) == (0, 0, 0)
    assert len(rig.provider.history) == history and rig.calls_logged() == calls
    assert rig.transactions() == before
    assert rig.budget.snapshot().reserved == 0
