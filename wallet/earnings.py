"""Engagement income: counters from the platforms become accruals, delta by delta.

  assets:receivable:engagement  +x
  income:engagement:<platform>  -x        once per (platform, post, period)

Only the growth since the last pull accrues (the last counters seen are kept
per post and metric); a counter that goes down (an unlike) accrues nothing and
the highest value stays the mark, so it never pays twice. Receivables are not
available balance (the budget reads assets:wallet only).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, update

from config.settings import EngagementRates
from kernel.clock import utcnow
from ledger.accounts import RECEIVABLE_ENGAGEMENT, engagement_account
from ledger.journal import Entry, Journal
from wallet.models import EngagementSeen

SEEN = EngagementSeen.__table__

# Platform counters are often plural ("views", "replies"); rates are per unit.
METRIC_ALIASES = {
    "views": "view", "reactions": "reaction", "comments": "comment", "likes": "like",
    "reposts": "repost", "replies": "reply", "quotes": "quote",
    "page_views_count": "view", "public_reactions_count": "reaction", "comments_count": "comment",
    "like_count": "like", "repost_count": "repost", "reply_count": "reply", "quote_count": "quote",
}


def rate_for(rates: EngagementRates, metric: str) -> int:
    """Micro-credits per unit of a metric (0 for a metric without a rate)."""
    name = METRIC_ALIASES.get(metric, metric)
    return int(getattr(rates, name, 0)) if name in type(rates).model_fields else 0


def accrue_engagement(
    journal: Journal,
    *,
    platform: str,
    post_id: str,
    task_id: str | None,
    metrics: Mapping[str, int],
    rates: EngagementRates,
    period: str,
) -> int:
    """Book the engagement earned since the last pull for one post and period; returns ucr booked."""
    for metric, count in metrics.items():
        if type(count) is not int or count < 0:
            raise ValueError(f"metric {metric!r} must be a non-negative int, got {count!r}")
    key = f"engagement:{platform}:{post_id}:{period}"
    if journal.find(key) is not None:
        return 0
    now = utcnow()
    try:
        # BEGIN IMMEDIATE (journal.writer): _advance reads the marks, then writes. A deferred transaction
        # upgrading from read to write gets SQLITE_BUSY at once in WAL mode, without busy_timeout.
        with journal.writer.begin() as conn:
            amount = _advance(conn, platform, post_id, metrics, rates, now)
            if amount and not journal.post_in(
                conn, "engagement",
                [Entry(RECEIVABLE_ENGAGEMENT, amount), Entry(engagement_account(platform), -amount)],
                idempotency_key=key, memo=f"engagement {platform} {post_id} {period}",
                task_id=task_id, post_id=post_id,
            ).created:
                raise _AlreadyBooked  # another worker booked this period first: keep its marks
    except _AlreadyBooked:
        return 0
    return amount


class _AlreadyBooked(Exception):
    """Rolls back the counter marks when the period was booked meanwhile."""


def _advance(conn, platform: str, post_id: str, metrics: Mapping[str, int], rates: EngagementRates, now) -> int:  # noqa: ANN001
    """Move the per-metric marks up to `metrics`; returns the ucr earned by the growth."""
    seen = {
        r.metric: int(r.count)
        for r in conn.execute(select(SEEN.c.metric, SEEN.c.count).where(SEEN.c.platform == platform, SEEN.c.post_id == post_id))
    }
    amount = 0
    for metric, count in sorted(metrics.items()):
        before = seen.get(metric)
        amount += max(count - (before or 0), 0) * rate_for(rates, metric)
        if before is None:
            conn.execute(SEEN.insert().values(platform=platform, post_id=post_id, metric=metric, count=count, updated_at=now))
        elif count > before:
            conn.execute(
                update(SEEN)
                .where(SEEN.c.platform == platform, SEEN.c.post_id == post_id, SEEN.c.metric == metric)
                .values(count=count, updated_at=now)
            )
    return amount
