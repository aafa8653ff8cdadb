"""Bandit: drifts toward the arm that earns more per credit, and still explores."""

from __future__ import annotations

import random

from agents.bandit import Bandit, arm_of, arm_stats, ledger_history
from kernel.db import make_engine
from ledger.journal import Entry, Journal


def simulate(rounds: int, seed: int) -> list[str]:
    """Each round: rank two arms, 'publish' the top one, observe its earnings per credit."""
    rng = random.Random(seed)
    world = random.Random(seed + 1)
    payoff = {"good": 2.0, "poor": 0.2}
    bandit = Bandit(rng=rng)
    picks = []
    for _ in range(rounds):
        top = bandit.rank([("a", "good"), ("b", "poor")])[0]
        picks.append(top.arm)
        earned = max(0.0, world.gauss(payoff[top.arm], 0.5))
        bandit.update(top.arm, 1_000_000, int(earned * 1_000_000))
    return picks


def test_bandit_drifts_toward_the_better_arm():
    picks = simulate(200, seed=7)
    assert picks[-100:].count("good") >= 90
    assert picks.count("good") > picks.count("poor") * 4


def test_bandit_still_explores_the_worse_arm():
    picks = simulate(200, seed=7)
    assert picks.count("poor") >= 2  # it was tried, not ignored from the start


def test_an_arm_without_history_is_explored_over_a_poor_one():
    stats = arm_stats([("old", 1_000_000, 100_000)] * 5)  # 0.1 credit earned per credit, 5 posts
    bandit = Bandit(stats, random.Random(3))
    firsts = [bandit.rank([("x", "old"), ("y", "new")])[0].arm for _ in range(100)]
    assert 60 < firsts.count("new") < 100  # mostly the untried arm, yet not blindly
    choice = bandit.rank([("y", "new")])[0]
    assert "no history yet (explore)" in choice.explanation and "rank 1 of 1" in choice.explanation


def test_same_seed_same_ranking():
    cands = [(str(i), f"arm{i % 3}") for i in range(10)]
    a = [c.key for c in Bandit(rng=random.Random(1)).rank(cands)]
    b = [c.key for c in Bandit(rng=random.Random(1)).rank(cands)]
    assert a == b


def test_history_comes_from_ledger_spend_and_income_by_task(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    journal = Journal(engine)
    journal.migrate()
    journal.post("compute", [Entry("expenses:compute:writer", 400), Entry("liabilities:provider:x", -400)],
                 idempotency_key="c1", task_id="t1")
    journal.post("compute", [Entry("expenses:compute:critic", 100), Entry("liabilities:provider:x", -100)],
                 idempotency_key="c2", task_id="t1")
    journal.post("tip", [Entry("assets:wallet", 1000), Entry("income:tips", -1000)], idempotency_key="i1", task_id="t1")
    journal.post("engagement", [Entry("assets:receivable:engagement", 250), Entry("income:engagement:bluesky", -250)],
                 idempotency_key="i2", post_id="selfpub-t2")
    arm = arm_of("https://f.example/feed", ("Rust",))
    hist = ledger_history(journal, [("t1", arm, ["selfpub-t1"]), ("t2", "other|", ["selfpub-t2"])])
    assert hist == [(arm, 500, 1000), ("other|", 0, 250)]
    assert arm_stats(hist)[arm].mean_ratio == 2.0
    engine.dispose()
