"""Learn what pays: rank candidate items by earnings per credit spent of past posts.

An arm is a (feed, tag) pair. Its history is the ratio income / spend of each
past post made from it (both read from the ledger by task id: ledger.reads). Ranking
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

from ledger.journal import Journal
from ledger.reads import task_outcomes

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


def ledger_history(journal: Journal, posts: Sequence[tuple[str, str, Sequence[str]]]) -> list[tuple[str, int, int]]:
    """(arm, spend, income) per published (task id, arm, post keys), read from the ledger (ledger.reads).

    Spend: what the ledger booked with the task id. Income: what it booked with
    the task id, or with one of the post keys on a transaction without a task id.
    """
    if not posts:
        return []
    outcomes = task_outcomes(journal, [(task_id, keys) for task_id, _, keys in posts])
    return [(arm, *outcomes[task_id]) for task_id, arm, _ in posts]
