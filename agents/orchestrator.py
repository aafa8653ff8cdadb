"""The orchestrator: one cycle, read top to bottom.

    run_cycle(ctx)      ctx = the caller's CycleContext (agents.cycle): id, start, stop flag, deadline;
                        the caller has passed the gate (agents.cycle.Gate, daemon.cycle.admit)
      reclaim   claims this worker left behind (a killed cycle of the same persona) are given back
      expire    held drafts past approval.expire_hours -> expired
      plan      how many items (items_per_cycle, the sustain tier, runway, budget headroom); resume
                unfinished tasks first, then rank new candidates with the bandit
      work      per task, in parallel with a bound: research -> write -> critique
                (bounded revisions) -> approval (auto | manual | risky)
      publish   every approved task (also those a person approved) via the channel
      record    CycleReport: counts, cost of the cycle (ucr), explanations, errors, and the outcome:
                ok | degraded (a model endpoint, feed or platform failed, or a model's replies stayed invalid)
                | failed (one did and nothing was stored)

Each step stores the task's new status and typed message before the next one
starts (agents.tasks), so a crash resumes where it stopped without paying for
a finished step again. Every task is worked on under its claim: a heartbeat
renews the claim's lease while a step awaits its model (or the platform), and
the step's write is fenced by the claim's token, so a step whose claim was
taken over by another worker writes nothing (ClaimLost: its result is dropped).
Between steps the cycle polls the context: a stop request (SIGTERM) or a
passed deadline starts no further step (the deadline only after each task's
first step of the cycle, so every cycle moves every task it took).

Planning numbers come from the LLM room's pricing (the role's model for the
sustain or runway tier now, and its fallbacks, at their configured prices).
The sustain tier (agents/sustain.py: income / cost over a trailing window) is read
once at planning; it scales the items and, through the router, picks the models.
No new item means no task, so no model call and nothing booked: idle costs nothing.

Errors, by type:
    BudgetExceeded                 stop starting new steps; the task waits for the next cycle
    ClaimLost                      the step's result is dropped; the worker that took over goes on
    LLMError with .retryable       recorded; the task waits (no attempt counted): a timeout, 429, 5xx
                                   or open circuit is the endpoint's, not the task's; but when it came
                                   from the repair call of an invalid reply (.invalid_reply_cost), the
                                   model answered and was paid: the attempt counts, as below
    LLMError, ResearchError,       attempt counted; after review.max_attempts the task is failed with
      pydantic.ValidationError     the reason (`drafts list`, the status page) and costs nothing more.
                                   A reply that is not JSON or misses its schema, also after the
                                   repair call (StructuredOutputError), reads "invalid model reply"
    publishers RetryableError      recorded; published on a later cycle (the outbox dedupes)
    publishers PermanentError      the task fails with the platform's reason
    anything else                  a bug: propagates (the scheduler crashes, systemd restarts)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from opentelemetry import trace
from pydantic import ValidationError

from agents.bandit import Bandit, arm_of, arm_stats, ledger_history
from agents.critic import Critic
from agents.cycle import CycleContext
from agents.llm import public_url
from agents.llm.errors import LLMError, StructuredOutputError
from agents.llm.pricing import planned_cost
from agents.messages import Brief, FeedItem
from agents.research import ResearchError
from agents.sustain import SustainRule
from agents.tasks import (
    APPROVED,
    DRAFTED,
    FAILED,
    HELD,
    IN_PROGRESS,
    PLANNED,
    PUBLISHED,
    REJECTED,
    RESEARCHED,
    ClaimLost,
    Task,
    TaskStore,
    post_key,
)
from agents.writer import Writer
from kernel.clock import utcnow
from kernel.money import format_credits
from config.settings import ModelPrice, Settings
from ledger.budget import Budget, BudgetExceeded
from ledger.journal import Journal
from ledger.reads import task_cost
from publishers.protocol import PermanentError, Post, PublishChannel, PublishError

log = logging.getLogger(__name__)
tracer = trace.get_tracer("selfpub.agents")

RAN, PAUSED, DRY_RUN, BUDGET_LIMITED, STOPPED = "RAN", "PAUSED", "DRY_RUN", "BUDGET_LIMITED", "STOPPED"
# A cycle's outcome (CycleReport.outcome): a dependency (model endpoint, feeds, platforms) failing makes it
# degraded; failing while the cycle stored nothing at all makes it failed.
CYCLE_OK, CYCLE_DEGRADED, CYCLE_FAILED = "ok", "degraded", "failed"
STEP_ERRORS = (LLMError, ResearchError, ValidationError)


@dataclass(frozen=True)
class Candidate:
    """A new feed item offered for planning, with its topic novelty (1.0 = nothing like it covered)."""

    item: FeedItem
    novelty: float = 1.0


class FeedSource(Protocol):
    """Where new items come from (the research agent's collection, or a fake)."""

    async def candidates(self) -> Sequence[Candidate]:
        """New, not yet seen items with their novelty."""
        ...

    def mark_covered(self, item: FeedItem) -> None:
        """The item's topic is being written about."""
        ...


@runtime_checkable
class Pricing(Protocol):
    """What the LLM room says a role's call costs: its model now (runway tiers) and that model's price."""

    def model_for(self, role: str) -> str:
        """The role's model now."""
        ...

    def price(self, model: str, role: str | None = None, task_id: str | None = None) -> ModelPrice:
        """The model's price, or an LLMError (PriceMissing) when it has none."""
        ...


class _SettingsPricing:
    """Pricing of an LLM that does not price itself (a test fake): the configured model and prices, no tiers."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def model_for(self, role: str) -> str:
        return self.settings.agents.role(role).model

    def price(self, model: str, role: str | None = None, task_id: str | None = None) -> ModelPrice:
        try:
            return self.settings.prices[model]
        except KeyError:
            raise LLMError(f"no price for model {model!r}") from None


class Researcher(Protocol):
    """The research step: feed items -> Brief."""

    async def brief(self, items: list[FeedItem], *, task_id: str | None = None, cycle_id: str | None = None) -> Brief:
        """One sourced brief for the items."""
        ...


@dataclass
class OrchestratorDeps:
    """Everything a cycle needs, passed in (no globals)."""

    settings: Settings
    llm: object  # agents.protocol.LLM (the writer, critic and research share it)
    budget: Budget
    journal: Journal
    tasks: TaskStore
    research: Researcher
    feed: FeedSource
    writer: Writer
    critic: Critic
    channel: PublishChannel | None = None
    runway: Callable[[], float | None] = lambda: None  # days of runway, None when unknown
    sustain: SustainRule | None = None  # income / cost sets items and models; None: always normal
    clock: Callable[[], datetime] = utcnow
    rng: random.Random = field(default_factory=random.Random)
    worker: str = field(default_factory=lambda: f"w-{uuid.uuid4().hex[:10]}")  # claims tasks; a persona's cycle's is stable
    max_attempts: int | None = None  # counted step failures before the task fails; None: review.max_attempts
    heartbeat_seconds: float | None = None  # lease renewal while a step runs; default a third of the lease


def cycle_worker(persona: str) -> str:
    """The worker id of a persona's cycle, whoever runs it (the daemon or `selfpub cycle`).

    A persona's cycles run one at a time under its cycle lock, so the next one may take back at
    once what a killed one still held; the claim tokens fence a cycle that only seemed dead.
    """
    return f"daemon:{persona}"


@dataclass
class CycleReport:
    """What one cycle did and what it cost."""

    cycle_id: str
    state: str = RAN
    reason: str = ""
    planned: int = 0
    resumed: int = 0
    researched: int = 0
    drafted: int = 0
    revised: int = 0
    approved: int = 0
    held: int = 0
    published: int = 0
    rejected: int = 0
    failed: int = 0
    expired: int = 0
    lost: int = 0  # steps whose claim another worker took over: their results were dropped
    cost: int = 0  # ucr committed under this cycle id
    tasks: list[str] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    budget_limit: str | None = None  # the budget's name of the limit that stopped the cycle or lowered its plan
    sustain: str | None = None  # the sustain tier the cycle planned under (conserve | normal | expand), None: no rule
    reviewed: int = 0  # critic reviews stored
    feeds_ok: list[str] = field(default_factory=list)  # feed URLs read this cycle
    feed_failures: dict[str, str] = field(default_factory=dict)  # feed URL -> what went wrong
    llm_failures: dict[str, int] = field(default_factory=dict)  # model endpoint -> failed steps
    # role -> steps whose model answered, but not valid JSON/schema even after the repair call (the endpoint is fine)
    invalid_replies: dict[str, int] = field(default_factory=dict)
    published_to: list[str] = field(default_factory=list)  # platforms that took a post this cycle
    publish_failures: dict[str, str] = field(default_factory=dict)  # platform -> what went wrong

    @property
    def progress(self) -> int:
        """Steps this cycle stored (research, drafts, reviews, verdicts, posts); 0: it did nothing useful."""
        return (self.researched + self.drafted + self.revised + self.reviewed + self.approved + self.held
                + self.published + self.rejected)

    def troubles(self) -> list[str]:
        """The dependencies that failed this cycle, one line each."""
        out = []
        if self.llm_failures:
            out.append("model endpoint failed: " + ", ".join(f"{e} ({n} step(s))" for e, n in self.llm_failures.items()))
        if self.invalid_replies:
            out.append("model replies invalid: " + ", ".join(f"{r} ({n} step(s))" for r, n in self.invalid_replies.items()))
        if self.feed_failures:
            n, total = len(self.feed_failures), len(self.feed_failures) + len(self.feeds_ok)
            head = "every feed failed" if not self.feeds_ok else f"{n} of {total} feed(s) failed"
            out.append(f"{head}: " + "; ".join(f"{u} ({why})" for u, why in self.feed_failures.items()))
        if self.publish_failures:
            out.append("publish failed: " + "; ".join(f"{p} ({why})" for p, why in self.publish_failures.items()))
        return out

    @property
    def outcome(self) -> str:
        """ok; degraded (a dependency failed); failed (one failed and the cycle stored nothing)."""
        if self.state == DRY_RUN or not self.troubles():
            return CYCLE_OK
        blocked = self.llm_failures or self.invalid_replies or self.publish_failures or not self.feeds_ok
        return CYCLE_FAILED if blocked and not self.progress else CYCLE_DEGRADED

    def why(self) -> str:
        """Why the outcome is not ok ("" when it is)."""
        return "; ".join(self.troubles()) if self.outcome != CYCLE_OK else ""

    def summary(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"cycle {self.cycle_id} {self.state}: planned {self.planned}, resumed {self.resumed}, "
            f"researched {self.researched}, drafted {self.drafted} (+{self.revised} revisions), "
            f"approved {self.approved}, held {self.held}, published {self.published}, rejected {self.rejected}, "
            f"failed {self.failed}, expired {self.expired}"
            + (f", claims lost {self.lost}" if self.lost else "")
            + f"; cost {format_credits(self.cost)} credits"
            + (f"; budget limit {self.budget_limit}" if self.budget_limit else "")
            + (f"; sustain {self.sustain}" if self.sustain else "")
        )


def _platforms(report: CycleReport, done: Sequence) -> None:
    for p in done:
        if p.platform not in report.published_to:
            report.published_to.append(p.platform)


def task_spend(journal: Journal, task_id: str) -> int:
    """Spend (ucr) the ledger holds for one task id (ledger.reads.task_cost)."""
    return task_cost(journal, task_id)


class Orchestrator:
    """Runs cycles: plan, research, write, critique, approve, publish, record."""

    def __init__(self, deps: OrchestratorDeps):
        self.deps = deps
        self.settings = deps.settings
        self._stop: BudgetExceeded | None = None
        self.plan_limit: str | None = None  # set by target()
        self.sustain_tier: str | None = None  # set by target()
        self._ctx = CycleContext.start(deps.clock())

    # -- planning numbers ---------------------------------------------------------

    def pricing(self) -> Pricing:
        """The LLM's own pricing when it has one (the metered client), else the configured prices."""
        llm = self.deps.llm
        return llm if isinstance(llm, Pricing) else _SettingsPricing(self.settings)

    def call_estimate(self, role: str) -> int:
        """Worst-case ucr of one call of a role: the dearest of its model now and its fallbacks (0 if unpriced)."""
        pricing = self.pricing()
        agent = self.settings.agents.role(role)
        worst = 0
        for model in [pricing.model_for(role), *(f.model for f in agent.fallbacks)]:
            try:
                price = pricing.price(model, role=role)
            except LLMError:
                continue  # the client refuses a call to an unpriced model: it costs nothing
            worst = max(worst, planned_cost(price, agent.max_tokens))
        return worst

    def item_estimate(self) -> int:
        """Worst-case ucr of one item: research, then write and review up to max_revisions more times."""
        rounds = 1 + self.settings.review.max_revisions
        return self.call_estimate("research") + rounds * (self.call_estimate("writer") + self.call_estimate("critic"))

    def target(self, cycle_id: str) -> tuple[int, list[str]]:
        """How many items to work on this cycle, and why (self.plan_limit: the budget limit that lowered it)."""
        why = []
        self.plan_limit = None
        self.sustain_tier = None
        n = self.settings.research.items_per_cycle
        why.append(f"up to research.items_per_cycle = {n} item(s)")
        rule = self.deps.sustain
        if rule is not None:
            state = rule.refresh()
            self.sustain_tier = state.tier
            n = rule.items(n)
            why.append(f"sustain {state.reason}: {n} item(s)")
        runway = self.deps.runway()
        slow = self.settings.schedule.slow_below_days
        if runway is not None and runway < slow and n > 1:
            n = 1
            why.append(f"runway {runway:.1f} days < schedule.slow_below_days {slow}: economise, 1 item")
        per_item = self.item_estimate()
        if per_item:
            room = self.deps.budget.headroom(cycle_id)
            fit = room // per_item
            if fit < n:
                n = int(fit)
                try:  # the budget names the limit that sets the headroom, as it would refusing a call
                    self.deps.budget.check((fit + 1) * per_item, cycle_id=cycle_id)
                except BudgetExceeded as exc:
                    self.plan_limit = exc.limit
                why.append(
                    f"budget headroom {format_credits(room)} credits (limit {self.plan_limit}) fits {fit} item(s) "
                    f"at a worst case of {format_credits(per_item)} each"
                )
        return max(n, 0), why

    # -- the cycle -----------------------------------------------------------------

    async def run_cycle(self, ctx: CycleContext | None = None, *, dry_run: bool = False) -> CycleReport:
        """Run one cycle the caller admitted (see the module docstring for the steps)."""
        d = self.deps
        ctx = ctx or CycleContext.start(d.clock())
        cycle_id = ctx.cycle_id
        report = CycleReport(cycle_id)
        self._stop = None
        self._ctx = ctx
        with tracer.start_as_current_span(
            "cycle", attributes={"cycle.id": cycle_id, "persona": self.settings.persona, "dry_run": dry_run}
        ) as span:
            if dry_run:
                return self._dry_run(report, cycle_id)
            # Claims this worker holds now were left by an earlier cycle of this persona that died
            # mid-way (the worker id is stable per persona, and the cycle lock runs one cycle at a
            # time): take them back now rather than after their lease.
            d.tasks.release_all(d.worker)
            expired = d.tasks.expire_held(ctx.now)
            report.expired = len(expired)
            if expired:
                report.explanations.append(f"{len(expired)} held draft(s) expired after {self.settings.approval.expire_hours} h")

            work = await self._plan(report, cycle_id)
            try:
                await self._work_all(work, report, cycle_id)
                await self._publish_approved(report, cycle_id)
            finally:
                for t in work:
                    if t.claim is not None:
                        d.tasks.release(t.claim)

            report.cost = d.budget.cycle_spent(cycle_id)
            if self._stop is not None:
                report.state = BUDGET_LIMITED
                report.budget_limit = self._stop.limit
            elif report.reason:
                report.state = STOPPED
            span.set_attribute("cycle.state", report.state)
            span.set_attribute("cycle.cost_ucr", report.cost)
            span.set_attribute("cycle.published", report.published)
            log.info("cycle done", extra={"cycle_id": cycle_id, "summary": report.summary()})
            return report

    def _halt(self, report: CycleReport, *, deadline: bool = True) -> bool:
        """True when no further step may start (a stop request, or the deadline); says why once."""
        why = self._ctx.halt_reason(self.deps.clock(), deadline=deadline)
        if why is not None and not report.reason:
            report.reason = f"{why}: the cycle stopped at a step boundary; unfinished tasks resume next cycle"
            report.explanations.append(report.reason)
            log.info("cycle stopping", extra={"cycle_id": report.cycle_id, "why": why})
        return why is not None

    def _dry_run(self, report: CycleReport, cycle_id: str) -> CycleReport:
        """Say what a cycle would do, without calling a model, fetching feeds or publishing."""
        d = self.deps
        report.state = DRY_RUN
        n, why = self.target(cycle_id)
        report.budget_limit = self.plan_limit
        report.sustain = self.sustain_tier
        counts = d.tasks.counts()
        resumable = sum(counts.get(s, 0) for s in IN_PROGRESS)
        report.explanations += why
        report.explanations.append(
            f"would work on {n} item(s): {min(n, resumable)} unfinished task(s) first, then up to "
            f"{max(n - resumable, 0)} new item(s) ranked by the bandit (feeds are not fetched in a dry run)"
        )
        report.explanations.append(f"worst case per item {format_credits(self.item_estimate())} credits")
        report.explanations.append(
            f"{counts.get(APPROVED, 0)} approved draft(s) would be published; {counts.get(HELD, 0)} held for approval"
        )
        return report

    async def _plan(self, report: CycleReport, cycle_id: str) -> list[Task]:
        """Claim unfinished tasks, then create new ones from ranked candidates."""
        d = self.deps
        with tracer.start_as_current_span("agent.plan", attributes={"cycle.id": cycle_id}) as span:
            n, why = self.target(cycle_id)
            report.explanations += why
            report.budget_limit = self.plan_limit
            report.sustain = self.sustain_tier
            if self._halt(report, deadline=False):
                n = 0
            work: list[Task] = []
            while len(work) < n:
                t = d.tasks.claim(IN_PROGRESS, d.worker)
                if t is None:
                    break
                work.append(t)
                report.explanations.append(f"resume task {t.id[:8]} from {t.status}")
            report.resumed = len(work)
            new = n - len(work)
            if new > 0:
                candidates = list(await d.feed.candidates())
                for rep in getattr(d.feed, "reports", None) or ():  # how each feed went (ResearchFeed)
                    if rep.ok:
                        report.feeds_ok.append(rep.feed_url)
                    else:
                        report.feed_failures[rep.feed_url] = (rep.status + (f": {rep.error}" if rep.error else ""))[:300]
                known = d.tasks.known_items([c.item.url for c in candidates], [c.item.content_hash for c in candidates])
                fresh = [c for c in candidates if c.item.url not in known and c.item.content_hash not in known]
                for choice, cand in self._rank(fresh)[:new]:
                    explanation = (
                        f"{choice.explanation}; novelty {cand.novelty:.2f}; chosen among {len(fresh)} new item(s)"
                    )
                    t = d.tasks.create(
                        cycle_id=cycle_id, items=[cand.item], arm=choice.arm, novelty=cand.novelty,
                        explanation=explanation, claimed_by=d.worker,
                    )
                    d.feed.mark_covered(cand.item)
                    work.append(t)
                    report.planned += 1
                    report.explanations.append(f"plan task {t.id[:8]}: {cand.item.title[:80]!r} ({explanation})")
            report.tasks += [t.id for t in work]
            span.set_attribute("plan.items", len(work))
            return work

    def _rank(self, fresh: list[Candidate]):  # noqa: ANN202
        """Candidates best first by Thompson sampling over past earnings per credit."""
        d = self.deps
        history = ledger_history(d.journal, d.tasks.published_arms())
        bandit = Bandit(arm_stats(history), d.rng)
        by_key = {str(i): c for i, c in enumerate(fresh)}
        ranked = bandit.rank([(k, arm_of(c.item.feed_url, c.item.tags)) for k, c in by_key.items()])
        return [(choice, by_key[choice.key]) for choice in ranked]

    async def _work_all(self, work: list[Task], report: CycleReport, cycle_id: str) -> None:
        """Push every claimed task as far as it goes, a bounded number at a time."""
        bound = asyncio.Semaphore(max(1, min(self.settings.research.concurrency, len(work) or 1)))

        async def one(task: Task) -> None:
            async with bound:
                await self._work(task, report, cycle_id)

        try:
            async with asyncio.TaskGroup() as group:
                for t in work:
                    group.create_task(one(t))
        except* Exception as eg:  # a bug in one task: surface the original error, not the group
            raise eg.exceptions[0] from None

    async def _work(self, task: Task, report: CycleReport, cycle_id: str) -> None:
        """research -> write -> critique/revise -> approval, persisting after each step, under the task's claim."""
        steps = 0
        while task.status in IN_PROGRESS and self._stop is None:
            if self._halt(report, deadline=steps > 0):
                return
            try:
                async with self._heartbeat(task):
                    task = await self._step(task, report, cycle_id)
                steps += 1
            except ClaimLost as exc:
                self._claim_lost(report, exc)
                return
            except BudgetExceeded as exc:
                self._stop = exc
                msg = f"task {task.id[:8]} stopped at {task.status}: {exc}"
                report.errors.append(msg)
                log.warning("budget stop", extra={"cycle_id": cycle_id, "task_id": task.id, "limit": exc.limit})
                try:
                    self.deps.tasks.note(task, reason=f"budget: {exc.limit} reached; resumes next cycle")
                except ClaimLost as lost:
                    self._claim_lost(report, lost)
                return
            except STEP_ERRORS as exc:
                try:
                    self._step_failed(task, exc, report)
                except ClaimLost as lost:
                    self._claim_lost(report, lost)
                return

    def _claim_lost(self, report: CycleReport, exc: ClaimLost) -> None:
        report.lost += 1
        report.errors.append(f"task {exc.task_id[:8]}: {exc}")
        log.warning("claim lost; step result dropped",
                    extra={"cycle_id": report.cycle_id, "task_id": exc.task_id, "holder": exc.holder})

    @contextlib.asynccontextmanager
    async def _heartbeat(self, task: Task) -> AsyncIterator[None]:
        """Renew the task's claim while the block awaits (a model call, a publish); stop when it ends."""
        claim = task.claim
        if claim is None:
            yield
            return
        tasks = self.deps.tasks
        every = self.deps.heartbeat_seconds or tasks.lease.total_seconds() / 3
        done = asyncio.Event()

        async def beat() -> None:
            while True:
                try:
                    await asyncio.wait_for(done.wait(), every)
                    return
                except TimeoutError:
                    pass
                try:
                    # In a thread: a busy database must not stall the step's own I/O on this loop.
                    await asyncio.to_thread(tasks.renew, claim)
                except ClaimLost:
                    return  # the step's write will be refused by its token; nothing more to renew
                except Exception:  # noqa: BLE001 - a failed renewal is retried at the next beat
                    log.warning("lease renewal failed", exc_info=True, extra={"task_id": claim.task_id})

        beater = asyncio.create_task(beat(), name=f"heartbeat-{claim.task_id[:8]}")
        try:
            yield
        finally:
            done.set()
            await beater

    def _step_failed(self, task: Task, exc: Exception, report: CycleReport) -> Task:
        d = self.deps
        what = f"{type(exc).__name__} at {task.status}: {str(exc)[:300]}"
        paid_invalid = getattr(exc, "invalid_reply_cost", None)
        if isinstance(exc, StructuredOutputError | ResearchError | ValidationError):
            what = "invalid model reply (" + what + ")"
        elif paid_invalid is not None:
            what = f"invalid model reply ({format_credits(paid_invalid)} credits), then its repair call failed ({what})"
        report.errors.append(f"task {task.id[:8]}: {what}")
        if isinstance(exc, StructuredOutputError):  # the endpoint answered: its reply is what failed
            role = exc.role or "unknown"
            report.invalid_replies[role] = report.invalid_replies.get(role, 0) + 1
        elif isinstance(exc, LLMError):
            for endpoint in self._endpoints(exc):
                report.llm_failures[endpoint] = report.llm_failures.get(endpoint, 0) + 1
        cost = task_spend(d.journal, task.id)
        if getattr(exc, "retryable", False) and paid_invalid is None:  # nothing answered: the endpoint's, not the task's
            return d.tasks.note(task, reason=f"retry later: {what}", cost=cost)
        attempts = task.attempts + 1
        bound, why = d.max_attempts, ""
        if bound is None:
            bound = self.settings.review.max_attempts
            why = f" (review.max_attempts = {bound})"
        if attempts >= bound:
            task.attempts = attempts
            task = d.tasks.advance(task, FAILED, reason=f"failed after {attempts} attempt(s){why}: {what}", cost=cost)
            report.failed += 1
            return task
        return d.tasks.note(task, reason=f"attempt {attempts} failed: {what}", attempts=attempts, cost=cost)

    def _endpoints(self, exc: LLMError) -> list[str]:
        """The endpoints a failed call went to: the role's own, and its fallbacks when every one failed."""
        try:
            agent = self.settings.agents.role(exc.role) if exc.role else None
        except (KeyError, ValueError, AttributeError):
            agent = None
        if agent is None:
            return [exc.model or "unknown"]
        urls = [agent.base_url] + ([f.base_url for f in agent.fallbacks] if exc.retryable else [])
        return [public_url(u) for u in urls]

    async def _step(self, task: Task, report: CycleReport, cycle_id: str) -> Task:
        """One step from the task's stored status; returns the task as stored afterwards."""
        d = self.deps
        m = task.messages
        if task.status == PLANNED:
            self._check_headroom(cycle_id, "research")
            with tracer.start_as_current_span("agent.research", attributes={"task.id": task.id}):
                m.brief = await d.research.brief(list(m.items), task_id=task.id, cycle_id=cycle_id)
            task = self._save(task, RESEARCHED)
            report.researched += 1
            return task
        if task.status == RESEARCHED:
            self._check_headroom(cycle_id, "writer")
            with tracer.start_as_current_span("agent.write", attributes={"task.id": task.id}):
                draft, m.brief = await d.writer.write(m.brief, task_id=task.id, cycle_id=cycle_id)
                m.drafts = [draft]
            m.reviews = []
            task = self._save(task, DRAFTED)
            report.drafted += 1
            return task
        # DRAFTED: review the latest draft, or act on its review.
        if len(m.reviews) < len(m.drafts):
            self._check_headroom(cycle_id, "critic")
            with tracer.start_as_current_span("agent.critique", attributes={"task.id": task.id}) as span:
                previous = (m.drafts[-2], m.reviews[-1]) if len(m.drafts) > 1 and m.reviews else None
                review = await d.critic.review(m.draft, m.brief, items=m.items, task_id=task.id, cycle_id=cycle_id,
                                               previous=previous)
                span.set_attribute("review.score", review.score)
                span.set_attribute("review.approved", review.approved)
            m.reviews.append(review)
            task.score = review.score
            report.reviewed += 1
            return self._save(task, DRAFTED)
        last = m.reviews[-1]
        if last.approved:
            return self._approve(task, report)
        revisions = len(m.drafts) - 1
        if revisions >= self.settings.review.max_revisions:
            reasons = "; ".join(last.problems) or f"score {last.score}"
            task = self._save(
                task, REJECTED, reason=f"rejected after {revisions} revision(s): {reasons}"[:2000], release=True
            )
            report.rejected += 1
            return task
        self._check_headroom(cycle_id, "writer")
        with tracer.start_as_current_span("agent.revise", attributes={"task.id": task.id, "revision": revisions + 1}):
            draft, m.brief = await d.writer.revise(m.brief, m.draft, last, task_id=task.id, cycle_id=cycle_id)
            m.drafts.append(draft)
        task = self._save(task, DRAFTED, reason=f"revision {revisions + 1}: " + "; ".join(last.problems)[:500])
        report.revised += 1
        return task

    def _check_headroom(self, cycle_id: str, role: str) -> None:
        """Refuse to start a step whose worst case no longer fits: the budget names the limit that bit."""
        need = self.call_estimate(role)
        if need:
            self.deps.budget.check(need, cycle_id=cycle_id, agent=role)

    def _save(self, task: Task, status: str, *, reason: str | None = None, release: bool = False, **kw) -> Task:  # noqa: ANN003
        cost = task_spend(self.deps.journal, task.id)
        return self.deps.tasks.advance(task, status, reason=reason, cost=cost, release=release, **kw)

    def _approve(self, task: Task, report: CycleReport) -> Task:
        """Approval mode: auto approves; manual holds all; risky holds what crosses a limit."""
        a = self.settings.approval
        cost = task_spend(self.deps.journal, task.id)
        score = task.messages.reviews[-1].score
        risks = []
        if a.mode == "manual":
            risks.append("approval mode is manual")
        elif a.mode == "risky":
            if cost > a.risky_max_cost:
                risks.append(f"cost {format_credits(cost)} > risky_max_cost {format_credits(a.risky_max_cost)}")
            if score < a.risky_min_score:
                risks.append(f"critic score {score} < risky_min_score {a.risky_min_score}")
            if task.novelty < a.risky_min_novelty:
                risks.append(f"novelty {task.novelty:.2f} < risky_min_novelty {a.risky_min_novelty}")
        task.cost = cost
        if risks:
            until = self.deps.clock() + timedelta(hours=a.expire_hours)
            task = self.deps.tasks.advance(
                task, HELD, reason="held for approval: " + "; ".join(risks), cost=cost, held_until=until, release=True
            )
            report.held += 1
            return task
        task = self.deps.tasks.advance(
            task, APPROVED, reason=f"approved ({a.mode}), score {score}", cost=cost, release=True
        )
        report.approved += 1
        return task

    async def _publish_approved(self, report: CycleReport, cycle_id: str) -> None:
        """Publish every approved task once, through the channel's outbox."""
        d = self.deps
        if d.channel is None:
            waiting = d.tasks.counts().get(APPROVED, 0)
            if waiting:
                report.explanations.append(f"no publish channel: {waiting} approved draft(s) wait")
            return
        # Every publish claim is given back when the loop ends, also on a crash: a task published or
        # failed has none left; one to retry later keeps its claim until then, so the loop moves on.
        taken: list[Task] = []
        try:
            while not self._halt(report, deadline=bool(report.published)):
                task = d.tasks.claim(APPROVED, d.worker)
                if task is None:
                    break
                taken.append(task)
                try:
                    async with self._heartbeat(task):
                        await self._publish(task, report)
                except ClaimLost as exc:
                    self._claim_lost(report, exc)
        finally:
            for t in taken:
                d.tasks.release(t.claim)

    async def _publish(self, task: Task, report: CycleReport) -> None:
        """Publish one claimed, approved task."""
        d = self.deps
        draft = task.messages.draft
        post = Post(
            key=post_key(task.id), title=draft.title, body_markdown=draft.body_markdown, bsky_text=draft.bsky_text,
            tags=draft.tags, description=draft.description, canonical_url=draft.canonical_url, task_id=task.id,
        )
        with tracer.start_as_current_span("publish", attributes={"task.id": task.id, "post.key": post.key}) as span:
            try:
                done = await d.channel.publish_all(post)
                _platforms(report, done)
            except PublishError as exc:
                _platforms(report, getattr(exc, "published", ()))  # the dispatcher: what went out before it
                for e in getattr(exc, "errors", None) or [exc]:
                    report.publish_failures[e.platform] = str(e)[:300]
                if not isinstance(exc, PermanentError):
                    report.errors.append(f"task {task.id[:8]}: publish will be retried: {exc}")
                    d.tasks.note(task, reason=f"publish will be retried: {exc}"[:2000])
                    return
                report.errors.append(f"task {task.id[:8]}: publish refused: {exc}")
                d.tasks.advance(task, FAILED, reason=f"publish refused: {exc}"[:2000])
                report.failed += 1
                return
            span.set_attribute("publish.platforms", len(done))
        task.messages.published = [
            {"platform": p.platform, "remote_id": p.remote_id, "url": p.url, "extra": dict(p.extra)} for p in done
        ]
        d.tasks.advance(task, PUBLISHED, reason="published: " + ", ".join(f"{p.platform} {p.url}" for p in done))
        report.published += 1
        if task.id not in report.tasks:
            report.tasks.append(task.id)


__all__ = [
    "BUDGET_LIMITED",
    "CYCLE_DEGRADED",
    "CYCLE_FAILED",
    "CYCLE_OK",
    "DRY_RUN",
    "PAUSED",
    "RAN",
    "STOPPED",
    "Candidate",
    "CycleReport",
    "FeedSource",
    "Orchestrator",
    "OrchestratorDeps",
    "Pricing",
    "Researcher",
    "cycle_worker",
    "task_spend",
]
