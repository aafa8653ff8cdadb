"""What the status page, /metrics and the systemd STATUS line read: money over time, posts, errors, runway,
and the sustain tier in force (ledger/sustain.py: income / cost over its window, and why).

Reads the daemon's job runs, and the ledger through ledger.reads (the one read model: the
chart here is the series `selfpub ledger plot` draws); never writes. Job error text is
redacted on the way out (daemon/redact.py), so rows stored before redaction on
write, or by an older version, never show a secret either.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, func, select

from daemon.models import ERROR_OUTCOMES, INTERRUPTED, OK, RUNNING, JobRun
from daemon.posts import post_key
from daemon.redact import Redactor
from ledger import reads
from config.settings import SustainSettings
from ledger.journal import Journal
from ledger.reads import Point, PostRow  # noqa: F401 - re-exported for the status page (daemon.http)
from ledger.sustain import SustainState, sustain_state

RUNS = JobRun.__table__


@dataclass(frozen=True)
class ErrorRow:
    """One failed job run."""

    when: datetime
    job: str
    outcome: str
    detail: str


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


class StatusReader:
    """Read-only views over the ledger and the job runs of one persona."""

    def __init__(
        self,
        journal: Journal,
        persona: str,
        *,
        posts_source: Callable[[int], list[PostRow]] | None = None,
        posts_of_source: Callable[[], dict[str, list[str]]] | None = None,  # daemon.posts.posts_of over the outbox
        runway_source: Callable[[], float | None] | None = None,
        redactor: Redactor | None = None,
    ):
        self.journal = journal
        self.engine: Engine = journal.engine
        self.persona = persona
        self.posts_source = posts_source
        self.posts_of_source = posts_of_source
        self.runway_source = runway_source
        self.redactor = redactor or Redactor()  # pass one that knows the settings' secret values

    def series(self, days: int = 30, now: datetime | None = None) -> list[Point]:
        """Balance, cumulative spend and cumulative income at each ledger transaction of the last `days`."""
        now = now or datetime.now(timezone.utc)
        return reads.money_series(self.journal, since=now - timedelta(days=days), until=now)

    def spend_by_agent(self) -> dict[str, int]:
        """Compute spend per agent (expenses:compute:<agent>)."""
        return reads.spend_by_agent(self.journal)

    def income_total(self) -> int:
        """Every credit of income so far."""
        return reads.income_total(self.journal)

    def recent_posts(self, limit: int = 10) -> list[PostRow]:
        """The latest posts with cost and earnings (from the publishers when wired, else from the ledger)."""
        if self.posts_source is not None:
            return self.posts_source(limit)
        return reads.ledger_posts(self.journal, limit)

    def posts_of(self) -> dict[str, list[str]]:
        """task id -> the posts it made (daemon.posts.posts_of over the outbox when wired), else none known."""
        return self.posts_of_source() if self.posts_of_source is not None else {}

    def posts_by_platform(self) -> dict[str, int]:
        """How many posts each platform got (of the recent ones known)."""
        counts: dict[str, int] = defaultdict(int)
        for p in self.recent_posts(limit=10_000):
            counts[p.platform] += 1
        return dict(counts)

    def recent_errors(self, limit: int = 10) -> list[ErrorRow]:
        """The latest failed job runs of this persona, their error text redacted."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RUNS.c.started_at, RUNS.c.job, RUNS.c.outcome, RUNS.c.detail)
                .where(RUNS.c.persona == self.persona, RUNS.c.outcome.in_(ERROR_OUTCOMES))
                .order_by(RUNS.c.started_at.desc()).limit(limit)
            ).all()
        return [ErrorRow(_aware(r.started_at), r.job, r.outcome, self.redactor.redact(r.detail or "")) for r in rows]

    def error_counts(self) -> dict[str, int]:
        """Failed job runs per job."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RUNS.c.job, func.count()).where(RUNS.c.persona == self.persona, RUNS.c.outcome.in_(ERROR_OUTCOMES))
                .group_by(RUNS.c.job)
            ).all()
        return {job: int(n) for job, n in rows}

    def runway_days(self, available: int, now: datetime | None = None, budget: Any = None) -> float | None:
        """Days the available balance lasts at the recent spend (ledger.reads.runway); None when nothing is spent."""
        if self.runway_source is not None:
            return self.runway_source()
        if budget is None:
            raise TypeError("StatusReader.runway_days needs the daemon's Budget (budget=...)")
        return reads.runway_days(self.journal, budget, now=now, available=available)

    def sustain(self, settings: SustainSettings, now: datetime | None = None) -> SustainState:
        """The sustain tier in force at `now` and why (the same read the orchestrator plans with)."""
        return sustain_state(self.journal, settings, now=now or datetime.now(timezone.utc))

    def last_cycle(self) -> tuple[datetime, str] | None:
        """When the latest finished cycle of this persona ended (any instance) and its outcome."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(RUNS.c.finished_at, RUNS.c.outcome)
                .where(RUNS.c.persona == self.persona, RUNS.c.job == "cycle", RUNS.c.finished_at.is_not(None),
                       RUNS.c.outcome != "skipped")
                .order_by(RUNS.c.finished_at.desc()).limit(1)
            ).first()
        return (_aware(row.finished_at), row.outcome) if row else None

    def mark_interrupted(self, *, own_instance: str, alive: Callable[[int], bool]) -> int:
        """Mark "running" job runs whose process on this host is gone as interrupted; returns how many.

        Only rows of this host (instance "host:pid") are judged: a row of another host may
        belong to a daemon that runs there now (several may share one PostgreSQL database).
        """
        host = own_instance.rsplit(":", 1)[0]
        with self.engine.connect() as conn:
            rows = conn.execute(select(RUNS.c.id, RUNS.c.instance).where(
                RUNS.c.persona == self.persona, RUNS.c.outcome == RUNNING)).all()
        dead = []
        for run_id, instance in rows:
            where, _, pid = (instance or "").rpartition(":")
            if where == host and pid.isdigit() and instance != own_instance and not alive(int(pid)):
                dead.append(run_id)
        if not dead:
            return 0
        with self.engine.begin() as conn:
            conn.execute(RUNS.update().where(RUNS.c.id.in_(dead), RUNS.c.outcome == RUNNING).values(
                outcome=INTERRUPTED, finished_at=datetime.now(timezone.utc),
                detail="the process ended before the job did (killed or crashed); marked at the next start"))
        return len(dead)

    def interrupted_count(self) -> int:
        """Job runs of this persona marked interrupted, ever."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(
                RUNS.c.persona == self.persona, RUNS.c.outcome == INTERRUPTED)).scalar_one())

    def last_ok_cycle_time(self) -> float | None:
        """Unix time the persona's last ok cycle ended (any instance), or None."""
        with self.engine.connect() as conn:
            at = conn.execute(select(func.max(RUNS.c.finished_at)).where(
                RUNS.c.persona == self.persona, RUNS.c.job == "cycle", RUNS.c.outcome == OK)).scalar()
        return _aware(at).timestamp() if at is not None else None

    def last_feed_reads(self, feed_urls: list[str]) -> dict[str, float]:
        """Unix time of each feed's last check, for the feeds whose last check read them (the research store)."""
        if not feed_urls:
            return {}  # and the research room is not imported
        from sqlalchemy.exc import SQLAlchemyError

        from agents.feeds import OK_STATUSES
        from agents.research_store import ResearchStore

        store, out = ResearchStore(self.engine), {}
        try:
            for url in feed_urls:
                state = store.feed_state(url)
                if state is None:
                    continue
                good = getattr(state, "ok_at", None)  # the last good read, where the store keeps it
                if good is None and state.last_outcome in OK_STATUSES:
                    good = state.checked_at
                if good is not None:
                    out[url] = _aware(good).timestamp()
        except SQLAlchemyError:
            return {}  # no research tables yet: nothing was ever fetched
        return out

    def last_post_times(self) -> dict[str, float]:
        """Unix time of each platform's latest post known."""
        out: dict[str, float] = {}
        for p in self.recent_posts(limit=10_000):
            out[p.platform] = max(out.get(p.platform, 0.0), p.when.timestamp())
        return out


def draft_titles(engine: Engine, task_ids: set[str]) -> dict[str, str]:
    """task id -> the title of its draft (tasks without a draft are left out)."""
    from agents.tasks import TASK, Messages

    out: dict[str, str] = {}
    ids = sorted(t for t in task_ids if t)
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            for task_id, messages in conn.execute(
                    select(TASK.c.id, TASK.c.messages).where(TASK.c.id.in_(ids[i:i + 500]))).all():
                draft = Messages.from_json(messages).draft
                if draft is not None:
                    out[task_id] = draft.title
    return out


def live_url(published: Any) -> str:  # noqa: ANN401 - publishers.protocol.Published
    """The post's address when a reader can open it on the web; "" for a local file or a draft."""
    url = published.url or ""
    return url if published.public and url.startswith(("https://", "http://")) else ""


def outbox_posts(journal: Journal, outbox: Any) -> Callable[[int], list[PostRow]]:  # noqa: ANN401
    """A posts source for StatusReader: what the publishers' outbox delivered, titled from its task's draft,
    linked to the live post, with each task's cost and earnings."""

    def source(limit: int) -> list[PostRow]:
        done = [r for r in outbox.published() if r.published is not None]
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        done.sort(key=lambda r: _aware(r.published_at) if r.published_at else epoch, reverse=True)
        done = done[:limit]
        tasks = {r.task_id for r in done if r.task_id}
        post_ids = {post_key(r.platform, r.published.remote_id) for r in done}
        cost = reads.task_costs(journal, tasks)
        earned = reads.post_earnings(journal, post_ids)
        titles = draft_titles(journal.engine, tasks)
        return [
            PostRow(
                _aware(r.published_at) if r.published_at else epoch, r.platform, r.published.remote_id,
                titles.get(r.task_id or "", r.published.remote_id), cost.get(r.task_id, 0),
                earned.get(post_key(r.platform, r.published.remote_id), 0), live_url(r.published),
            )
            for r in done
        ]

    return source

