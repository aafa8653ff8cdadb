"""Learn what pays: rank candidate items by earnings per credit spent of past posts.

An arm is a (feed, tag) pair. Its history is the ratio income / compute spend
of each past post made from it (both read from the ledger by task id). Ranking
is Thompson sampling with a Gaussian posterior over the arm's mean ratio: an
arm with no history starts from an optimistic prior, so new feeds and tags get
tried (exploration), and arms that earn more per credit are drawn first more
and more often (exploitation). Ratios are statistics, not money: floats are
fine here; amounts stay integer micro-credits.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from ledger.models import Posting, Transaction

PRIOR_MEAN = 1.0  # earnings per credit assumed of an arm never tried: break-even, optimistic
PRIOR_WEIGHT = 1.0  # how many observations the prior counts for
NOISE = 1.0  # assumed spread of one post's ratio around its arm's mean


@dataclass(frozen=True)
class ArmStats:
    """What an arm earned: number of posts and the mean income per credit spent."""

    arm: str
    posts: int = 0
    spend: int = 0  # ucr
    income: int = 0  # ucr
    mean_ratio: float = 0.0

    def posterior(self, prior_mean: float = PRIOR_MEAN, prior_weight: float = PRIOR_WEIGHT) -> tuple[float, float]:
        """Posterior mean and standard deviation of the arm's earnings per credit."""
        w = prior_weight + self.posts
        mean = (prior_weight * prior_mean + self.posts * self.mean_ratio) / w
        return mean, NOISE / math.sqrt(w)


@dataclass(frozen=True)
class Choice:
    """One ranked candidate and why it ranked there."""

    key: str
    arm: str
    sample: float
    rank: int
    explanation: str


def arm_of(feed_url: str, tags: Sequence[str]) -> str:
    """The arm of an item: its feed and its first tag."""
    return f"{feed_url}|{(tags[0] if tags else '').lower()}"


def arm_stats(history: Iterable[tuple[str, int, int]]) -> dict[str, ArmStats]:
    """Fold (arm, spend, income) of past posts into per-arm statistics."""
    acc: dict[str, list[tuple[int, int]]] = {}
    for arm, spend, income in history:
        acc.setdefault(arm, []).append((spend, income))
    out = {}
    for arm, rows in acc.items():
        ratios = [income / spend if spend > 0 else (1.0 if income == 0 else 10.0) for spend, income in rows]
        out[arm] = ArmStats(
            arm, len(rows), sum(s for s, _ in rows), sum(i for _, i in rows), sum(ratios) / len(ratios)
        )
    return out


class Bandit:
    """Thompson sampling over arms; pass a seeded `random.Random` for reproducible plans."""

    def __init__(self, stats: Mapping[str, ArmStats] | None = None, rng: random.Random | None = None):
        self.stats = dict(stats or {})
        self.rng = rng or random.Random()

    def update(self, arm: str, spend: int, income: int) -> None:
        """Add one post's outcome to an arm."""
        s = self.stats.get(arm, ArmStats(arm))
        ratio = income / spend if spend > 0 else 1.0
        n = s.posts + 1
        self.stats[arm] = ArmStats(arm, n, s.spend + spend, s.income + income, (s.mean_ratio * s.posts + ratio) / n)

    def sample(self, arm: str) -> float:
        """One draw of the arm's earnings per credit from its posterior."""
        mean, sd = self.stats.get(arm, ArmStats(arm)).posterior()
        return self.rng.gauss(mean, sd)

    def rank(self, candidates: Sequence[tuple[str, str]]) -> list[Choice]:
        """Order (key, arm) candidates by one posterior draw each, best first, with an explanation."""
        drawn = [(key, arm, self.sample(arm)) for key, arm in candidates]
        drawn.sort(key=lambda t: t[2], reverse=True)
        out = []
        for i, (key, arm, value) in enumerate(drawn, 1):
            s = self.stats.get(arm, ArmStats(arm))
            mean, sd = s.posterior()
            if s.posts:
                why = (
                    f"arm {arm!r}: {s.posts} past post(s), {s.mean_ratio:.2f} credits earned per credit spent; "
                    f"posterior {mean:.2f}±{sd:.2f}, drew {value:.2f}"
                )
            else:
                why = f"arm {arm!r}: no history yet (explore); prior {mean:.2f}±{sd:.2f}, drew {value:.2f}"
            out.append(Choice(key, arm, value, i, f"rank {i} of {len(drawn)} by Thompson sampling; {why}"))
        return out


def ledger_history(engine: Engine, posts: Sequence[tuple[str, str, Sequence[str]]]) -> list[tuple[str, int, int]]:
    """(arm, spend, income) per published task, read from the ledger tables.

    Spend: postings to expenses:compute:* of transactions carrying the task id.
    Income: postings to income:* of transactions carrying the task id or one of
    the post keys as post_id (income accounts hold credit balances, so income is
    minus their sum). Read directly from the ledger tables with the journal's
    engine, two grouped queries, until ledger/reports offers the same figure.
    """
    if not posts:
        return []
    txn, posting = Transaction.__table__, Posting.__table__
    task_ids = [p[0] for p in posts]
    key_to_task = {k: p[0] for p in posts for k in p[2]}
    spend: dict[str, int] = {}
    income: dict[str, int] = {}
    with engine.connect() as conn:
        for chunk in _chunks(task_ids, 500):
            rows = conn.execute(
                select(txn.c.task_id, posting.c.account.startswith("income:").label("inc"), func.sum(posting.c.amount))
                .join(posting, posting.c.txn_id == txn.c.id)
                .where(txn.c.task_id.in_(chunk))
                .where(posting.c.account.startswith("expenses:compute:") | posting.c.account.startswith("income:"))
                .group_by(txn.c.task_id, "inc")
            ).all()
            for tid, inc, total in rows:
                if inc:
                    income[tid] = income.get(tid, 0) - int(total)
                else:
                    spend[tid] = spend.get(tid, 0) + int(total)
        keys = list(key_to_task)
        for chunk in _chunks(keys, 500):
            rows = conn.execute(
                select(txn.c.post_id, func.sum(posting.c.amount))
                .join(posting, posting.c.txn_id == txn.c.id)
                .where(txn.c.post_id.in_(chunk), txn.c.task_id.is_(None), posting.c.account.startswith("income:"))
                .group_by(txn.c.post_id)
            ).all()
            for key, total in rows:
                tid = key_to_task[key]
                income[tid] = income.get(tid, 0) - int(total)
    return [(arm, spend.get(tid, 0), income.get(tid, 0)) for tid, arm, _ in posts]


def _chunks(seq: list, n: int):  # noqa: ANN001, ANN202
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
