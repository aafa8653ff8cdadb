"""The cycle's trigger: cron or interval with jitter, coalesced, one at a time, stretched when the runway is short."""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.settings import ScheduleSettings
from daemon.scheduler import CYCLE, EARNINGS, Cadence, JobFns, cycle_trigger


async def _noop() -> None:
    return None


def test_interval_trigger_with_jitter_and_slow_factor() -> None:
    s = ScheduleSettings(interval_minutes=30, jitter_seconds=120, slow_factor=4)
    t = cycle_trigger(s)
    assert isinstance(t, IntervalTrigger) and t.interval.total_seconds() == 1800 and t.jitter == 120
    assert cycle_trigger(s, slow=True).interval.total_seconds() == 7200


def test_cron_trigger_and_its_slow_form() -> None:
    s = ScheduleSettings(cron="0 */2 * * *", jitter_seconds=0, slow_factor=3)
    assert isinstance(cycle_trigger(s), CronTrigger)
    assert cycle_trigger(s.model_copy(update={"jitter_seconds": 60})).jitter == 60
    slow = cycle_trigger(s, slow=True)
    assert isinstance(slow, IntervalTrigger) and slow.interval.total_seconds() == 3 * 2 * 3600


async def test_jobs_are_coalesced_single_instance_with_misfire_grace() -> None:
    sched = AsyncIOScheduler()
    cadence = Cadence(sched, JobFns(_noop, _noop, None, None, _noop),
                      ScheduleSettings(interval_minutes=5, misfire_grace_seconds=77))
    cadence.install()
    sched.start(paused=True)
    try:
        for job_id in (CYCLE, EARNINGS):
            job = sched.get_job(job_id)
            assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 77
        assert sched.get_job("settle") is None  # no wallet job without a wallet
        assert cadence.follow_runway(2.0) is True and cadence.cycle_interval().total_seconds() == 5 * 60 * 4
        assert cadence.follow_runway(3.0) is False  # still under: nothing to do
        assert cadence.follow_runway(None) is True and cadence.cycle_interval().total_seconds() == 300
    finally:
        sched.shutdown(wait=False)
