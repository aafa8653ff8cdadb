"""Honest health: what each cycle says about its dependencies, kept for /healthz, STATUS=, the page and /metrics.

    a cycle job ends with a job-run outcome (daemon.models) and, when it ran, the cycle's result
      verdict(result)        the orchestrator's CycleReport: outcome ok | degraded | failed, why, progress
                             (a result without an outcome, e.g. the test-only fake cycle: ok, with progress)
      HealthBook.cycle_done  counts it; logs every failed dependency at level error
        counters             cycles by outcome, model failures by endpoint, invalid model replies by role
                             (the endpoint answered, the reply stayed invalid), feed failures by feed,
                             publish failures by platform
        last successes       unix seconds of the last ok cycle, each feed's last good read, each platform's
                             last post (seeded at start from the job runs, the research store, the outbox)
        no_progress          cycles in a row that stored nothing (failed, crashed, or nothing to do)
    HealthBook.problem()     None, or why the daemon is degraded:
                               "no useful progress in N cycle(s) in a row; last cycle failed: <why>"
                               "last cycle failed: <why>" / "last cycle degraded: <why>"
    HealthBook.families()    Prometheus families: *_total counters, *_timestamp_seconds gauges

Counters live in the process and start at zero with it (the Prometheus counter contract: a
restart is a reset, which rate() and increase() handle).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from config.settings import Settings
from daemon.models import ABANDONED, CRASHED, DEGRADED, FAILED, OK, RETRY, SKIPPED
from daemon.redact import redact_url

log = logging.getLogger("selfpub.health")

CYCLE_OUTCOMES = (OK, DEGRADED, FAILED, RETRY, CRASHED, ABANDONED, SKIPPED)
NO_PROGRESS_OUTCOMES = (FAILED, RETRY, CRASHED)
DEFAULT_STALLED_AFTER = 3


@dataclass(frozen=True)
class Verdict:
    """What one cycle's result says: the job-run outcome, why it is not ok, and whether it stored anything."""

    outcome: str
    why: str = ""
    progress: bool = True
    report: Any = None


def verdict(result: Any) -> Verdict:  # noqa: ANN401 - a CycleReport or whatever a stand-in cycle returns
    """The verdict of a cycle's result (a CycleReport's outcome; anything else counts as ok with progress)."""
    outcome = getattr(result, "outcome", None)
    if outcome not in (OK, DEGRADED, FAILED):
        return Verdict(OK)
    why = result.why() if callable(getattr(result, "why", None)) else ""
    return Verdict(outcome, why, bool(getattr(result, "progress", 1)), result)


def stalled_after(settings: Settings) -> int:
    """schedule.stalled_after_cycles, or the default when the settings have no such key."""
    return int(getattr(settings.schedule, "stalled_after_cycles", DEFAULT_STALLED_AFTER))


class HealthBook:
    """Counters, last successes and the no-progress streak of one daemon process."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time,
                 redact: Callable[[str], str] = lambda text: text):
        self.clock = clock
        self.redact = redact  # the reasons are shown on /healthz, STATUS= and the page
        self.cycles: Counter[str] = Counter({o: 0 for o in CYCLE_OUTCOMES})
        self.llm: Counter[str] = Counter()
        self.invalid: Counter[str] = Counter()  # role -> steps whose replies stayed invalid
        self.feeds: Counter[str] = Counter()
        self.publish: Counter[str] = Counter()
        self.last_ok_cycle: float | None = None
        self.feed_ok: dict[str, float] = {}
        self.publish_ok: dict[str, float] = {}
        self.no_progress = 0
        self.last: tuple[str, str] | None = None  # (outcome, why) of the last cycle that ran
        self.configure(settings)

    def configure(self, settings: Settings) -> None:
        """Known label values start at 0 (an alert sees a series before the first failure)."""
        self.stalled_after = stalled_after(settings)
        for role in ("orchestrator", "research", "writer", "critic"):
            agent = getattr(settings.agents, role, None)
            if agent is not None:
                self.invalid.setdefault(role, 0)
            for url in [agent.base_url, *(f.base_url for f in agent.fallbacks)] if agent is not None else ():
                self.llm.setdefault(_label(url), 0)
        for feed in settings.feeds:
            self.feeds.setdefault(_label(feed.url), 0)
        pubs = settings.publishers
        for name in ("devto", "bluesky", "local"):
            if getattr(getattr(pubs, name, None), "enabled", False):
                self.publish.setdefault(name, 0)

    def seed(self, last_ok_cycle: float | None, published: dict[str, float], feeds: dict[str, float] | None = None) -> None:
        """Last successes known from before this process (the job-run table, the outbox, the research store)."""
        if last_ok_cycle is not None:
            self.last_ok_cycle = max(self.last_ok_cycle or 0.0, last_ok_cycle)
        for platform, at in published.items():
            self.publish_ok[platform] = max(self.publish_ok.get(platform, 0.0), at)
        for url, at in (feeds or {}).items():
            self.feed_ok[_label(url)] = max(self.feed_ok.get(_label(url), 0.0), at)

    # -- recording ---------------------------------------------------------------

    def cycle_done(self, outcome: str, v: Verdict | None = None, *, cycle_id: str = "", detail: str = "") -> None:
        """Count one cycle job run; log its failed dependencies at level error."""
        now = self.clock()
        self.cycles[outcome] += 1
        report = v.report if v is not None else None
        if report is not None:
            self._dependencies(report, now, cycle_id)
        if outcome == SKIPPED or outcome == ABANDONED:
            return  # paused (said by the pause itself) or stopped: no verdict on the dependencies
        why = self.redact((v.why if v is not None else "") or detail)
        self.last = (outcome, why)
        if outcome == OK:
            self.last_ok_cycle = now
        if outcome in NO_PROGRESS_OUTCOMES or (v is not None and not v.progress):
            self.no_progress += 1
        else:
            self.no_progress = 0
        if outcome == FAILED:
            log.error("cycle failed: no progress, a dependency failed", extra={"cycle_id": cycle_id, "why": why})
        elif outcome == DEGRADED:
            log.warning("cycle degraded: a dependency failed", extra={"cycle_id": cycle_id, "why": why})
        if self.no_progress == self.stalled_after:
            log.error("no useful progress", extra={"cycles": self.no_progress, "why": self._last_why()})

    def _dependencies(self, report: Any, now: float, cycle_id: str) -> None:  # noqa: ANN401 - a CycleReport
        for endpoint, n in (getattr(report, "llm_failures", None) or {}).items():
            self.llm[_label(endpoint)] += n
            log.error("model endpoint failed", extra={"cycle_id": cycle_id, "endpoint": _label(endpoint),
                                                      "steps": n})
        for role, n in (getattr(report, "invalid_replies", None) or {}).items():
            self.invalid[role] += n
            log.error("model replies invalid", extra={"cycle_id": cycle_id, "role": role, "steps": n})
        for url in getattr(report, "feeds_ok", None) or ():
            self.feed_ok[_label(url)] = now
        for url, why in (getattr(report, "feed_failures", None) or {}).items():
            self.feeds[_label(url)] += 1
            log.error("feed failed", extra={"cycle_id": cycle_id, "feed": _label(url), "error": why})
        for platform in getattr(report, "published_to", None) or ():
            self.publish_ok[platform] = now
        for platform, why in (getattr(report, "publish_failures", None) or {}).items():
            self.publish[platform] += 1
            log.error("publish failed", extra={"cycle_id": cycle_id, "platform": platform, "error": why})

    # -- reading -----------------------------------------------------------------

    def _last_why(self) -> str:
        if self.last is None:
            return ""
        outcome, why = self.last
        if outcome == OK:
            return "last cycle ok but found nothing to do"
        return f"last cycle {outcome}" + (f": {why}" if why else "")

    @property
    def stalled(self) -> bool:
        """True after stalled_after cycles in a row that stored nothing."""
        return self.no_progress >= self.stalled_after

    def problem(self) -> str | None:
        """Why the daemon is degraded, or None."""
        if self.stalled:
            return f"no useful progress in {self.no_progress} cycle(s) in a row; {self._last_why()}"
        if self.last is not None and self.last[0] != OK:
            return self._last_why()
        return None

    def families(self, interrupted: int = 0) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """The Prometheus families of this book (and the interrupted job runs counted in the table)."""
        yield _counter("selfpub_cycles", "Cycle job runs by outcome", "outcome", self.cycles)
        yield _counter("selfpub_llm_failures", "Cycle steps whose model call failed, by endpoint", "endpoint",
                       self.llm)
        yield _counter("selfpub_llm_invalid_replies", "Cycle steps whose model answered but not valid JSON/schema "
                       "after the repair call, by role", "role", self.invalid)
        yield _counter("selfpub_feed_failures", "Feed fetches that failed, by feed", "feed", self.feeds)
        yield _counter("selfpub_publish_failures", "Posts a platform failed or refused, by platform", "platform",
                       self.publish)
        yield CounterMetricFamily("selfpub_job_runs_interrupted",
                                  "Job runs a dead process left running, marked interrupted at a start",
                                  value=interrupted)
        yield GaugeMetricFamily("selfpub_cycles_without_progress", "Cycles in a row that stored nothing",
                                value=self.no_progress)
        yield GaugeMetricFamily("selfpub_degraded", "1 when the daemon reports itself degraded",
                                value=1 if self.problem() else 0)
        if self.last_ok_cycle is not None:
            yield GaugeMetricFamily("selfpub_cycle_last_success_timestamp_seconds",
                                    "Unix time of the last cycle that ended ok", value=self.last_ok_cycle)
        yield _gauge("selfpub_feed_last_success_timestamp_seconds", "Unix time of each feed's last good read",
                     "feed", self.feed_ok)
        yield _gauge("selfpub_publish_last_success_timestamp_seconds", "Unix time of each platform's last post",
                     "platform", self.publish_ok)


def _label(url: str) -> str:
    """A URL as a metric label or log field, its secrets masked (daemon/redact.py takes it apart)."""
    return redact_url(url) if "://" in url else url  # "embedded" is a name, not a URL


def _counter(name: str, doc: str, label: str, values: Iterable[tuple[str, int]] | Counter) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, n in sorted(dict(values).items()):
        family.add_metric([key], n)
    return family


def _gauge(name: str, doc: str, label: str, values: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, at in sorted(values.items()):
        family.add_metric([key], at)
    return family
