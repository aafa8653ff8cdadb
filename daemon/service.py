"""The long-running service: jobs on a scheduler, pause/resume, signals, reload, systemd notify.

State machine:

    STARTING -> RUNNING <-> PAUSED(reason) -> STOPPING
                (the one gate, agents.cycle.Gate: budget.evaluate with the wallet's pause
                 reason, before every cycle (daemon.cycle.admit), after every earnings pull,
                 on a reload, and while paused at every heartbeat and every /healthz: a deposit
                 or a tip resumes within seconds, and the skipped cycle runs at once; a request
                 made while another evaluation runs waits for it and is then answered by an
                 evaluation that started after it, never skipped)

Shown to people (STATUS=, /healthz, the page), RUNNING becomes DEGRADED(reason) while the
last cycle failed or degraded, or after schedule.stalled_after_cycles cycles in a row that
stored nothing (daemon/health.py keeps the counts, /metrics exposes them).

At start, job runs a dead process of this host left "running" (SIGKILL, a crash) are
marked interrupted and counted. A job the stop cancels (the scheduler's shutdown) ends
quietly: a clean stop logs no error.

A cycle: the job makes its CycleContext (id, start, the stop flag, a deadline one
cycle period away), passes the gate and takes the persona's cycle lock
(daemon.cycle.admit, the same door `selfpub cycle` and the demo use), then runs
the injected cycle with that context.

Job error policy (one catch per job run), one check on the class's `retryable`, which the
base error of every room declares (WalletError, LedgerError, PublishError, LLMError, ConfigError...):

    Exception
     +-- retryable = True    recorded; the job runs again at its next tick
     |                       (also the foreign types in ErrorPolicy.retryable: TimeoutError,
     |                        ConnectionError, SQLAlchemy's OperationalError, httpx.TransportError)
     +-- retryable = False   permanent: recorded and skipped
     +-- anything else (retryable None, or not declared): a bug, logged with its traceback;
                             the service stops with exit code 1 and systemd restarts it
                             (Restart=on-failure)

SIGTERM: stop scheduling, set the cycle's stop flag (the orchestrator starts no
further step), let the cycle in flight finish for up to
`stop_grace_seconds`, then cancel it (the orchestrator stores every step, so
abandoning is safe and the next start resumes the task) and exit 0.
SIGHUP: reload and validate the config file; on error keep the old settings.
Jobs.on_reload (sync or async) then rebuilds what depends on them (the orchestrator).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import update

from agents.cycle import CycleContext, Gate
from config.loader import ConfigError
from kernel.money import format_credits
from config.settings import Settings
from daemon.cycle import LOCKED, PAUSED, admit
from daemon.health import HealthBook, Verdict, verdict
from daemon.http import StatusServer
from daemon.lock import CycleLock
from daemon.models import ABANDONED, CRASHED, DEGRADED, FAILED, OK, RETRY, RUNNING, SKIPPED, JobRun
from daemon.notify import Notifier
from daemon.scheduler import Cadence, JobFns
from daemon.status import StatusReader
from daemon.threads import call_job, in_thread
from ledger.budget import Budget, PauseState, Snapshot
from ledger.sustain import NORMAL, SustainState, format_ratio

log = logging.getLogger("selfpub.service")
RUNS = JobRun.__table__
DEFAULT_STOP_GRACE_SECONDS = 60.0


class State(enum.Enum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPING = "STOPPING"


class RetryableJobError(Exception):
    """A job failed for a passing reason (network, rate limit); try again later."""

    retryable = True


class PermanentJobError(Exception):
    """A job failed in a way retrying cannot fix; record it and move on."""

    retryable = False


@dataclass(frozen=True)
class ErrorPolicy:
    """A job's error by its class's `retryable` (True / False); foreign types that cannot say it are listed."""

    retryable: tuple[type[BaseException], ...] = (TimeoutError, ConnectionError)  # foreign, passing

    def classify(self, exc: BaseException) -> str:
        """'retryable', 'permanent' or 'bug', by type only."""
        said = getattr(type(exc), "retryable", None)
        if said is True:
            return "retryable"
        if said is False:
            return "permanent"
        return "retryable" if isinstance(exc, self.retryable) else "bug"


Job = Callable[[], Any]  # sync or async; a sync job runs in a worker thread


@dataclass
class Jobs:
    """The injected work: a cycle, and the optional wallet jobs."""

    cycle: Callable[[CycleContext], Any]
    earnings: Job | None = None
    settle: Job | None = None
    reconcile: Job | None = None
    pause_reason: Callable[[], str | None] | None = None  # the wallet's: "chain data too stale: ..." or None
    on_reload: Callable[[Settings], Any] | None = None  # rebuild what depends on the settings (may be async)


@dataclass
class Health:
    """The answer of /healthz."""

    ok: bool
    reason: str = ""


@dataclass
class Figures:
    """Cached numbers for STATUS, /metrics and the status page (refreshed by the jobs)."""

    snapshot: Snapshot | None = None
    runway_days: float | None = None
    sustain: SustainState | None = None  # the sustain tier in force and why
    last_cycle_at: datetime | None = None
    last_cycle_outcome: str | None = None
    refreshed_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Service:
    """One persona's daemon: scheduler, pause gate, cycle lock, notify, reload."""

    def __init__(
        self,
        settings: Settings,
        *,
        budget: Budget,
        jobs: Jobs,
        reader: StatusReader,
        lock: CycleLock,
        notifier: Notifier | None = None,
        policy: ErrorPolicy | None = None,
        config_loader: Callable[[], Settings] | None = None,
        tracer: Any = None,
        stop_grace_seconds: float = DEFAULT_STOP_GRACE_SECONDS,
        fast_seconds: float | None = None,
        run_cycle_at_start: bool = True,
        instance: str | None = None,
        on_settings: Callable[[Settings], None] | None = None,
        site: Any = None,  # website.SiteServer (daemon/site.py), or None: started and stopped with us
    ):
        self.settings = settings
        self.budget = budget
        self.journal = budget.journal
        self.engine = budget.engine
        self.jobs = jobs
        self.reader = reader
        self.lock = lock
        self.notifier = notifier or Notifier({})
        self.policy = policy or ErrorPolicy()
        self.config_loader = config_loader
        self.tracer = tracer
        self.stop_grace_seconds = stop_grace_seconds
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}"
        self.on_settings = on_settings
        self.site = site
        self.gate = Gate(budget, jobs.pause_reason)
        self.state = State.STARTING
        self.reason = ""
        self.reload_note = ""
        self.exit_code = 0
        self.figures = Figures()
        self.book = HealthBook(settings, redact=self._redact)
        self.interrupted = 0  # job runs of this persona marked interrupted (all starts so far)
        self.heartbeat = time.monotonic()
        self._evaluate_lock = asyncio.Lock()
        self._evaluations_asked = 0  # requests numbered in order; an evaluation answers those before its start
        self._evaluations_answered = 0
        self.inflight: asyncio.Task | None = None
        self.cycle_stop = threading.Event()
        self._stop = asyncio.Event()
        self._refresh_lock = asyncio.Lock()
        self.http: StatusServer | None = None
        self.scheduler = AsyncIOScheduler(timezone=settings.schedule.timezone)
        interval = self.notifier.watchdog_interval()
        self.cadence = Cadence(
            self.scheduler,
            JobFns(self._quiet(self.cycle_job), self._quiet(self.earnings_job),
                   self._quiet(self.settle_job) if jobs.settle else None,
                   self._quiet(self.reconcile_job) if jobs.reconcile else None,
                   self._quiet(self.watchdog_job)),
            settings.schedule,
            heartbeat_seconds=min(interval, 10.0) if interval else 10.0,
            fast_seconds=fast_seconds,
            run_cycle_at_start=run_cycle_at_start,
        )

    # -- life cycle -------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (exit 0) or a bug (exit 1)."""
        loop = asyncio.get_running_loop()
        for sig, handler in ((signal.SIGTERM, self.request_stop), (signal.SIGINT, self.request_stop),
                             (signal.SIGHUP, self.request_reload)):
            loop.add_signal_handler(sig, handler)
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.shutdown()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        return self.exit_code

    async def start(self) -> None:
        """Evaluate the budget, start the scheduler, tell systemd we are ready."""
        await in_thread(self._startup_checks)
        self.cadence.install(slow=self._is_slow())
        self.scheduler.start()
        if self.settings.http.enabled:
            self.http = StatusServer(self, self.settings.http.bind, self.settings.http.port)
            await self.http.start()
        if self.site is not None:
            await self.site.start()
        log.info("service started", extra={"persona": self.settings.persona, "instance": self.instance,
                                           "state": self.state.value})
        self.notifier.ready(self.status_line())

    def _startup_checks(self) -> None:
        self._mark_interrupted()
        self.budget.expire_stale()
        self._evaluate()
        self._refresh()
        self.book.seed(self.reader.last_ok_cycle_time(), self.reader.last_post_times(),
                       self.reader.last_feed_reads([f.url for f in self.settings.feeds]))

    def _mark_interrupted(self) -> None:
        """Job runs a dead process of this host left "running" become interrupted (counted, shown)."""
        marked = self.reader.mark_interrupted(own_instance=self.instance, alive=_pid_alive)
        self.interrupted = self.reader.interrupted_count()
        if marked:
            log.warning("job runs left running by a dead process marked interrupted",
                        extra={"marked": marked, "interrupted_total": self.interrupted})

    def _quiet(self, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """The job as the scheduler runs it: cancelled by a stop (the scheduler's shutdown) it ends quietly."""

        async def run() -> None:
            try:
                await job()
            except asyncio.CancelledError:
                if self.state is not State.STOPPING:
                    raise
                log.debug("job cancelled by the stop", extra={"job": job.__name__})

        run.__name__ = job.__name__
        return run

    def request_stop(self) -> None:
        """Begin a clean stop (SIGTERM)."""
        if self.state is not State.STOPPING:
            log.info("stop requested", extra={"cycle_in_flight": self.cycle_running})
        self._set_state(State.STOPPING, self.reason)
        self.cycle_stop.set()
        self._stop.set()

    def request_reload(self) -> None:
        """Reload the config (SIGHUP) without blocking the signal handler."""
        asyncio.get_running_loop().create_task(self.reload())

    async def shutdown(self) -> None:
        """Stop scheduling; give the cycle in flight its grace, then abandon it."""
        self._set_state(State.STOPPING, self.reason)
        self.notifier.stopping(self.status_line())
        if self.scheduler.running:
            self.scheduler.pause()
        task = self.inflight
        if task is not None and not task.done():
            log.info("waiting for the cycle in flight", extra={"grace_seconds": self.stop_grace_seconds})
            done, _ = await asyncio.wait({task}, timeout=self.stop_grace_seconds)
            if not done:
                log.warning("abandoning the cycle in flight; the next start resumes it")
                task.cancel()
                await asyncio.wait({task}, timeout=5)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.http is not None:
            await self.http.stop()
        if self.site is not None:
            await self.site.stop()
        log.info("service stopped", extra={"exit_code": self.exit_code})

    @property
    def cycle_running(self) -> bool:
        """True while a cycle runs in this instance."""
        return self.inflight is not None and not self.inflight.done()

    # -- state ------------------------------------------------------------------

    def _set_state(self, state: State, reason: str = "") -> None:
        if self.state is State.STOPPING:
            return  # terminal
        if (state, reason) != (self.state, self.reason):
            if self.state is not State.STARTING or state is not State.RUNNING:
                log.info("state changed", extra={"from": self.state.value, "to": state.value, "reason": reason})
            self.state, self.reason = state, reason

    def _evaluate(self) -> PauseState:
        """The gate (budget.evaluate with the wallet's pause reason) and the matching service state."""
        return self._follow(self.gate.check())

    def _follow(self, pause: PauseState) -> PauseState:
        self._set_state(State.PAUSED if pause.paused else State.RUNNING, pause.reason)
        return pause

    def _refresh(self) -> None:
        """Re-read the figures shown by STATUS, /metrics and the status page."""
        snap = self.budget.snapshot()
        self.figures.snapshot = snap
        self.figures.runway_days = self.reader.runway_days(snap.available, budget=self.budget)
        self.figures.sustain = self.reader.sustain(self.settings.sustain, now=self.budget.clock())
        last = self.reader.last_cycle()
        if last is not None:
            self.figures.last_cycle_at, self.figures.last_cycle_outcome = last
        self.figures.refreshed_at = time.monotonic()

    async def refresh(self, max_age: float = 2.0) -> Figures:
        """Fresh figures (re-read when older than max_age seconds)."""
        async with self._refresh_lock:
            if time.monotonic() - self.figures.refreshed_at > max_age:
                await in_thread(self._refresh)
        return self.figures

    def _is_slow(self) -> bool:
        r = self.figures.runway_days
        return r is not None and r < self.settings.schedule.slow_below_days

    def _follow_runway(self) -> None:
        if self.cadence.follow_runway(self.figures.runway_days):
            log.info("cycle cadence changed", extra={
                "slow": self.cadence.slow, "runway_days": self.figures.runway_days,
                "interval_seconds": (i.total_seconds() if (i := self.cadence.cycle_interval()) else None)})

    def display_state(self) -> tuple[str, str]:
        """The state shown to people (DEGRADED when running while a dependency fails or nothing moves) and why."""
        if self.state is State.RUNNING:
            problem = self.problem()
            if problem:
                return "DEGRADED", problem
        return self.state.value, self.reason

    def problem(self) -> str | None:
        """Why a running daemon is degraded (this process's cycles, else the persona's last recorded cycle)."""
        problem = self.book.problem()
        if problem is None and self.book.last is None and self.figures.last_cycle_outcome in (FAILED, CRASHED, DEGRADED):
            problem = f"last cycle {self.figures.last_cycle_outcome}"
        return problem

    def status_line(self) -> str:
        """One line for systemd STATUS=: state (and why when paused or degraded), balance, runway, the sustain
        tier when it is not normal (and its income / cost ratio), last cycle."""
        shown, why = self.display_state()
        state = shown + (f" ({why})" if shown != State.RUNNING.value and why else "")
        parts = [state]
        snap = self.figures.snapshot
        if snap is not None:
            parts.append(f"balance {format_credits(snap.available)} cr")
        r = self.figures.runway_days
        parts.append(f"runway {r:.1f} d" if r is not None else "runway n/a")
        tier = self.figures.sustain
        if tier is not None and tier.tier != NORMAL:
            parts.append(f"sustain {tier.tier}" + (f" ({format_ratio(tier.ratio)})" if tier.ratio is not None else ""))
        if self.figures.last_cycle_at is not None:
            parts.append(f"last cycle {self.figures.last_cycle_at:%Y-%m-%d %H:%M}Z {self.figures.last_cycle_outcome}")
        else:
            parts.append("last cycle never")
        if self.reload_note:
            parts.append(self.reload_note)
        return " | ".join(parts)

    def health(self) -> Health:
        """200 unless paused, chain data too stale, last cycle crashed, or the scheduler dead."""
        if self.state is State.STOPPING:
            return Health(False, "stopping")
        if not self.scheduler.running:
            return Health(False, "scheduler dead: not running")
        stale_for = time.monotonic() - self.heartbeat
        if stale_for > 3 * self.cadence.heartbeat_seconds + 5:
            return Health(False, f"scheduler dead: no heartbeat for {stale_for:.0f} s")
        if self.state is State.PAUSED:
            return Health(False, f"paused: {self.reason}")
        problem = self.problem()
        if problem:
            return Health(False, f"degraded: {problem}")
        return Health(True, "ok")

    async def fresh_health(self) -> Health:
        """health(), with the pause evaluated again first while paused (a deposit shows at once)."""
        if self.state is State.PAUSED:
            await self.reevaluate()
        return self.health()

    async def reevaluate(self) -> None:
        """The gate again, now (a deposit, a tip, a reload); a resume runs the skipped cycle at once.

        One evaluation at a time. A request made while one runs waits, and is answered by the next
        evaluation to start (which reads the ledger and thresholds as they are now): an evaluation
        that started before a reload or a deposit cannot answer for it, and heartbeats and /healthz
        calls that pile up under load share one evaluation instead of queueing one each.
        """
        if self.state is State.STOPPING:
            return
        self._evaluations_asked += 1
        ticket = self._evaluations_asked
        async with self._evaluate_lock:
            if self._evaluations_answered >= ticket or self.state is State.STOPPING:
                return  # an evaluation that started after this request has run
            self._evaluations_answered = self._evaluations_asked
            was_paused = self.state is State.PAUSED
            await in_thread(self._evaluate)
            resumed = was_paused and self.state is State.RUNNING
        if resumed:
            self._cycle_now()
            await self._after_job()

    def _cycle_now(self) -> None:
        job = self.scheduler.get_job("cycle") if self.scheduler.running else None
        if job is not None:
            job.modify(next_run_time=datetime.now(timezone.utc))

    # -- job runs -----------------------------------------------------------------

    def _record_start(self, job: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(RUNS.insert().values(
                persona=self.settings.persona, job=job, instance=self.instance,
                started_at=datetime.now(timezone.utc), outcome=RUNNING, detail="",
            ).returning(RUNS.c.id)).scalar_one()

    def _redact(self, text: str) -> str:
        from daemon.redact import redact, secret_values

        return redact(text, secret_values(self.settings))

    def _record_end(self, run_id: int, outcome: str, detail: str = "") -> None:
        # Redact before cutting: a cut could split a secret into a part no rule recognises.
        detail = self._redact(detail)[:1000]
        with self.engine.begin() as conn:
            conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(
                finished_at=datetime.now(timezone.utc), outcome=outcome, detail=detail))

    def _record_skip(self, job: str, detail: str) -> None:
        self._record_end(self._record_start(job), SKIPPED, detail)

    async def _guarded(self, job: str, fn: Callable[[], Awaitable[Any]],
                       judge: Callable[[Any], Verdict] | None = None) -> tuple[str, Verdict]:
        """Run one job once with the error policy; returns the outcome (and the judge's verdict on the result)."""
        run_id = await in_thread(self._record_start, job)
        outcome, detail, seen = OK, "", None
        try:
            result = await fn()
            if judge is not None:
                seen = judge(result)
                outcome, detail = seen.outcome, seen.why
        except asyncio.CancelledError:
            outcome, detail = ABANDONED, "stopped before the job finished"
            await asyncio.shield(in_thread(self._record_end, run_id, outcome, detail))
            raise
        except Exception as exc:  # the one catch per job run
            kind = self.policy.classify(exc)
            detail = f"{type(exc).__name__}: {exc}"
            if kind == "retryable":
                outcome = RETRY
                log.error("job failed, will retry at its next run", extra={"job": job, "error": detail})
            elif kind == "permanent":
                outcome = FAILED
                log.error("job failed permanently, skipped", extra={"job": job, "error": detail})
            else:
                outcome = CRASHED
                log.critical("bug in job; stopping so the service manager restarts us",
                             exc_info=exc, extra={"job": job})
                self.exit_code = 1
                self.request_stop()
        await in_thread(self._record_end, run_id, outcome, detail)
        return outcome, seen or Verdict(outcome, detail, progress=outcome == OK)

    async def cycle_job(self) -> None:
        """The scheduled cycle: the gate and the per-persona lock (daemon.cycle.admit), then the injected cycle."""
        if self.state is State.STOPPING:
            return
        self.cycle_stop = threading.Event()
        now = datetime.now(timezone.utc)
        period = self.cadence.period()
        ctx = CycleContext.start(now, stop=self.cycle_stop, deadline=now + period if period else None)
        admission = await in_thread(admit, self.gate, self.lock)
        self._follow(admission.pause)
        if admission.outcome == PAUSED:
            log.info("cycle skipped: paused", extra={"reason": admission.reason})
            self.book.cycle_done(SKIPPED)
            await in_thread(self._record_skip, "cycle", f"paused: {admission.reason}")
            await self._after_job()
            return
        if admission.outcome == LOCKED:
            log.info("cycle skipped: another instance runs this persona's cycle",
                     extra={"persona": self.settings.persona})
            return
        self.inflight = asyncio.get_running_loop().create_task(self._locked_cycle(ctx))
        # shield: a scheduler shutdown must not cancel the cycle; shutdown() decides.
        await asyncio.shield(self.inflight)

    async def _locked_cycle(self, ctx: CycleContext) -> None:
        try:
            with self._cycle_span(ctx.cycle_id):
                try:
                    outcome, seen = await self._guarded("cycle", lambda: call_job(self.jobs.cycle, ctx), verdict)
                except asyncio.CancelledError:
                    self.book.cycle_done(ABANDONED)
                    raise
            log.info("cycle finished", extra={"cycle_id": ctx.cycle_id, "outcome": outcome})
            self.book.cycle_done(outcome, seen, cycle_id=ctx.cycle_id)
        finally:
            await asyncio.shield(in_thread(self.lock.release))
        await self._after_job()

    def _cycle_span(self, cycle_id: str):  # noqa: ANN202
        return self._job_span("cycle", {"selfpub.cycle_id": cycle_id})

    def _job_span(self, name: str, attributes: dict[str, str] | None = None):  # noqa: ANN202
        """The root span of one job run: a new trace per cycle, earnings pull, settlement, reconciliation."""
        if self.tracer is None:
            return contextlib.nullcontext()
        from opentelemetry import context as otel_context

        return self.tracer.start_as_current_span(
            name, context=otel_context.Context(),
            attributes={"selfpub.persona": self.settings.persona, "selfpub.instance": self.instance, **(attributes or {})},
        )

    async def _after_job(self) -> None:
        if self.state is State.STOPPING:
            return
        await in_thread(self._refresh)
        self._follow_runway()
        self.notifier.status(self.status_line())

    async def earnings_job(self) -> None:
        """Pull earnings (when a wallet is wired), then re-evaluate the pause: a tip or deposit resumes."""
        if self.jobs.earnings is not None:
            with self._job_span("earnings"):
                await self._guarded("earnings", lambda: call_job(self.jobs.earnings))
        if self.state is not State.STOPPING:
            await self.reevaluate()
            await self._after_job()

    async def settle_job(self) -> None:
        """Pay provider liabilities on chain when over the threshold."""
        with self._job_span("settle"):
            await self._guarded("settle", lambda: call_job(self.jobs.settle))
        await self._after_job()

    async def reconcile_job(self) -> None:
        """Compare the ledger with the chain."""
        with self._job_span("reconcile"):
            await self._guarded("reconcile", lambda: call_job(self.jobs.reconcile))
        await self._after_job()

    async def watchdog_job(self) -> None:
        """Heartbeat: WATCHDOG=1 for systemd, and the liveness /healthz reads; while paused, the gate again."""
        self.heartbeat = time.monotonic()
        self.notifier.watchdog()
        if self.state is State.PAUSED:
            await self.reevaluate()  # a `ledger deposit` by another process resumes within a heartbeat

    # -- reload -------------------------------------------------------------------

    async def reload(self) -> bool:
        """Reload and validate the config; keep the old settings on any problem."""
        if self.config_loader is None or self.state is State.STOPPING:
            return False
        self.notifier.reloading()
        try:
            new = await in_thread(self.config_loader)
        except ConfigError as exc:
            for p in exc.problems:
                log.error("config reload problem", extra={"key": p.key, "problem": p.what, "fix": p.fix})
            self.reload_note = f"config reload failed ({len(exc.problems)} problem(s)); running on the previous config"
            log.error("config reload failed; keeping the previous settings", extra={"problems": len(exc.problems)})
            self.notifier.ready(self.status_line())
            return False
        rebuilt = self._apply(new)
        if inspect.isawaitable(rebuilt):  # e.g. the orchestrator rebuilt on the new settings
            await rebuilt
        self.reload_note = ""
        log.info("config reloaded")
        await self.reevaluate()  # new thresholds pause or resume now, not at the next job
        self.notifier.ready(self.status_line())
        return True

    def _apply(self, new: Settings) -> Any:  # noqa: ANN401 - what on_reload returns
        old = self.settings
        for key in ("persona", "state_dir", "database", "http", "site"):
            if getattr(old, key) != getattr(new, key):
                log.warning("setting changed that needs a restart", extra={"key": key})
        keep = {k: getattr(old, k) for k in ("persona", "state_dir", "database", "http", "site")}
        new = new.model_copy(update=keep)
        self.settings = new
        self.budget = Budget(self.journal, new.budget, persona=new.persona, clock=self.budget.clock)
        self.gate = Gate(self.budget, self.jobs.pause_reason)
        self.book.configure(new)
        if new.schedule != old.schedule:
            self.cadence.set_schedule(new.schedule)
        if self.on_settings is not None:
            self.on_settings(new)
        if self.jobs.on_reload is not None:
            return self.jobs.on_reload(new)
        return None



def _pid_alive(pid: int) -> bool:
    """True when a process with this id exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
