"""The jobs on an APScheduler 3 AsyncIOScheduler: cycle, earnings, settlement, reconciliation, watchdog.

The cycle runs on a cron expression or an interval (with jitter), coalesced,
one instance at a time, late by at most misfire_grace_seconds. When the
runway falls under schedule.slow_below_days the cycle interval is multiplied
by schedule.slow_factor (a cron schedule becomes an interval of its own gap
times the factor); it goes back when the runway recovers. The period between
two cycles is also each cycle's deadline (a cycle starts no step past it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.settings import ScheduleSettings

CYCLE, EARNINGS, SETTLE, RECONCILE, WATCHDOG = "cycle", "earnings", "settle", "reconcile", "watchdog"
DEFAULT_HEARTBEAT_SECONDS = 10.0

JobFn = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class JobFns:
    """The coroutine functions the scheduler calls (the service's job methods)."""

    cycle: JobFn
    earnings: JobFn
    settle: JobFn | None
    reconcile: JobFn | None
    watchdog: JobFn


def cron_gap(cron: str, tz: str) -> timedelta:
    """The time between two consecutive fires of a cron expression (from now)."""
    trigger = CronTrigger.from_crontab(cron, timezone=tz)
    now = datetime.now(timezone.utc)
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(microseconds=1))
    return second - first


def cycle_trigger(schedule: ScheduleSettings, *, slow: bool = False, fast_seconds: float | None = None) -> BaseTrigger:
    """The cycle's trigger: cron or interval with jitter, stretched by slow_factor when slow."""
    factor = schedule.slow_factor if slow else 1
    if fast_seconds is not None:  # test-only cadence
        return IntervalTrigger(seconds=fast_seconds * factor, timezone=schedule.timezone)
    jitter = schedule.jitter_seconds or None
    if schedule.cron:
        if factor == 1:
            trigger = CronTrigger.from_crontab(schedule.cron, timezone=schedule.timezone)
            trigger.jitter = jitter  # from_crontab takes no jitter argument
            return trigger
        gap = cron_gap(schedule.cron, schedule.timezone)
        return IntervalTrigger(seconds=gap.total_seconds() * factor, timezone=schedule.timezone, jitter=jitter)
    return IntervalTrigger(minutes=schedule.interval_minutes * factor, timezone=schedule.timezone, jitter=jitter)


class Cadence:
    """Owns the AsyncIOScheduler and its jobs; reschedules the cycle when the runway crosses the threshold."""

    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        fns: JobFns,
        schedule: ScheduleSettings,
        *,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        fast_seconds: float | None = None,
        run_cycle_at_start: bool = True,
    ):
        self.scheduler = scheduler
        self.fns = fns
        self.schedule = schedule
        self.heartbeat_seconds = heartbeat_seconds
        self.fast_seconds = fast_seconds
        self.run_cycle_at_start = run_cycle_at_start
        self.slow = False

    def install(self, *, slow: bool = False) -> None:
        """Add every job (replacing existing ones of the same id)."""
        self.slow = slow
        s = self.schedule
        now = datetime.now(timezone.utc)
        common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": s.misfire_grace_seconds,
                  "replace_existing": True}
        first_cycle = {"next_run_time": now} if self.run_cycle_at_start else {}
        self.scheduler.add_job(self.fns.cycle, cycle_trigger(s, slow=slow, fast_seconds=self.fast_seconds),
                               id=CYCLE, name=CYCLE, **common, **first_cycle)

        def every(minutes: int) -> IntervalTrigger:
            if self.fast_seconds is not None:
                return IntervalTrigger(seconds=self.fast_seconds)
            return IntervalTrigger(minutes=minutes, jitter=min(s.jitter_seconds, minutes * 6) or None)

        self.scheduler.add_job(self.fns.earnings, every(s.earnings_interval_minutes), id=EARNINGS, name=EARNINGS, **common)
        for job_id, fn, minutes in ((SETTLE, self.fns.settle, s.settle_interval_minutes),
                                    (RECONCILE, self.fns.reconcile, s.reconcile_interval_minutes)):
            if fn is not None:
                self.scheduler.add_job(fn, every(minutes), id=job_id, name=job_id, **common)
            elif self.scheduler.get_job(job_id):
                self.scheduler.remove_job(job_id)
        self.scheduler.add_job(self.fns.watchdog, IntervalTrigger(seconds=self.heartbeat_seconds), id=WATCHDOG,
                               name=WATCHDOG, coalesce=True, max_instances=1, misfire_grace_time=None,
                               replace_existing=True, next_run_time=now)

    def set_schedule(self, schedule: ScheduleSettings) -> None:
        """Take a reloaded schedule and re-add the jobs with it."""
        self.schedule = schedule
        self.install(slow=self.slow)

    def follow_runway(self, runway_days: float | None) -> bool:
        """Stretch or restore the cycle interval when the runway crosses slow_below_days; True when changed."""
        slow = runway_days is not None and runway_days < self.schedule.slow_below_days
        if slow == self.slow:
            return False
        self.slow = slow
        if self.scheduler.get_job(CYCLE) is None:
            return True  # not installed yet: install() picks up self.slow
        self.scheduler.reschedule_job(CYCLE, trigger=cycle_trigger(self.schedule, slow=slow, fast_seconds=self.fast_seconds))
        return True

    def period(self) -> timedelta | None:
        """The time between two cycles now (a cron schedule's gap, stretched when slow); None when unknown."""
        interval = self.cycle_interval()
        if interval is not None:
            return interval
        if self.schedule.cron:
            return cron_gap(self.schedule.cron, self.schedule.timezone) * (self.schedule.slow_factor if self.slow else 1)
        return None

    def cycle_interval(self) -> timedelta | None:
        """The current cycle interval (None for a plain cron schedule)."""
        job = self.scheduler.get_job(CYCLE)
        trigger = job.trigger if job else None
        return trigger.interval if isinstance(trigger, IntervalTrigger) else None
