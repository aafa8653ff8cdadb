"""The engagement half of the earnings job: platform metrics -> ledger accruals.

Metrics come from the publishers' dispatcher; each one is mapped back to the
task that made the post through the outbox, then booked by the wallet room as
`income:engagement:<platform>` against `assets:receivable:engagement` (the delta
since the last pull, once per post and period).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime, timezone

from config.settings import EngagementRates
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
    task_of: Mapping[tuple[str, str], str | None],
    rates: Mapping[str, EngagementRates],
    now: datetime,
) -> int:
    """Book every post's new engagement; returns the micro-credits accrued."""
    total = 0
    for m in metrics:
        counts = counters_of(m)
        rate = rates.get(m.platform)
        if not counts or rate is None:
            continue
        total += accrue_engagement(
            journal, platform=m.platform, post_id=f"{m.platform}:{m.remote_id}",
            task_id=task_of.get((m.platform, m.remote_id)), metrics=counts, rates=rate, period=period_of(now),
        )
    return total


async def pull_engagement(channel, outbox, journal: Journal, rates: Mapping[str, EngagementRates], now: datetime) -> int:  # noqa: ANN001
    """Ask every platform for metrics of what was published and book the deltas."""
    metrics = await channel.metrics()
    task_of = {
        (r.platform, r.published.remote_id): r.task_id for r in outbox.published() if r.published is not None
    }
    booked = book_engagement(journal, metrics, task_of, rates, now)
    log.info("engagement pulled", extra={"metrics": len(metrics), "booked_ucr": booked})
    return booked
