"""The engagement half of the earnings job: platform metrics -> ledger accruals.

Metrics come from the publishers' dispatcher; each one is keyed and mapped back to
the task that made the post through the outbox (daemon/posts.py: post_key, task_of,
the keys the report and the status page use), then booked by the wallet room as
`income:engagement:<platform>` against `assets:receivable:engagement` (the delta
since the last pull, once per post and period).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime, timezone

from config.settings import EngagementRates
from daemon.posts import post_key, task_of as tasks_of_posts
from ledger.journal import Journal
from publishers.protocol import Metrics
from wallet.earnings import accrue_engagement

log = logging.getLogger(__name__)
COUNTERS = tuple(f.name for f in fields(Metrics) if f.name not in ("platform", "remote_id"))


def counters_of(m: Metrics) -> dict[str, int]:
    """The counters a platform reported (None means it did not say, so it is left out)."""
    return {name: getattr(m, name) for name in COUNTERS if getattr(m, name) is not None}


def period_of(now: datetime) -> str:
    """The accrual period of a pull: one per hour."""
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H")


def book_engagement(
    journal: Journal,
    metrics: list[Metrics],
    task_of: Mapping[str, str | None],
    rates: Mapping[str, EngagementRates],
    now: datetime,
) -> int:
    """Book every post's new engagement (`task_of`: post key -> its task); returns the micro-credits accrued."""
    total = 0
    for m in metrics:
        counts = counters_of(m)
        rate = rates.get(m.platform)
        if not counts or rate is None:
            continue
        key = post_key(m.platform, m.remote_id)
        total += accrue_engagement(
            journal, platform=m.platform, post_id=key, task_id=task_of.get(key), metrics=counts, rates=rate,
            period=period_of(now),
        )
    return total


async def pull_engagement(channel, outbox, journal: Journal, rates: Mapping[str, EngagementRates], now: datetime) -> int:  # noqa: ANN001
    """Ask every platform for metrics of what was published and book the deltas."""
    metrics = await channel.metrics()
    booked = book_engagement(journal, metrics, tasks_of_posts(outbox), rates, now)
    log.info("engagement pulled", extra={"metrics": len(metrics), "booked_ucr": booked})
    return booked
