"""The demo keeps the real gate: review settings as any user gets them, and each rejected draft shown with
its title, what it cost and the critic's coded reasons."""

from __future__ import annotations

from pathlib import Path

from agents.critic import check_draft
from agents.messages import Review
from agents.tasks import PUBLISHED, REJECTED, TaskStore
from agents.writer import WriterOutput, finish_draft
from config.settings import ReviewSettings
from daemon.demo.loop import _rejections, demo_settings
from kernel.db import make_engine
from tests.fakes.scripted_llm import sample_brief, sample_draft, sample_item


def test_the_demo_does_not_lower_the_review_gate(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path, "http://127.0.0.1:9/feed.xml")
    defaults = ReviewSettings()
    assert settings.review.min_score == defaults.min_score > 0
    assert (settings.review.min_words, settings.review.min_sentences, settings.review.min_key_point_coverage) == (
        defaults.min_words, defaults.min_sentences, defaults.min_key_point_coverage)
    assert settings.disclosure.enabled


def test_a_rejected_draft_is_shown_with_its_cost_and_coded_reasons(tmp_path: Path) -> None:
    store = TaskStore(make_engine(f"sqlite:///{tmp_path / 'tasks.db'}"), persona="demo")
    store.migrate()
    brief = sample_brief()
    bad = finish_draft(WriterOutput(title="Data brief", body_markdown="<h1>Data Brief</h1>"), brief)
    problems, fixes = check_draft(bad, brief, [sample_item()])
    rejected = store.create(cycle_id="c1", items=[sample_item()])
    rejected.messages.brief, rejected.messages.drafts = brief, [bad]
    rejected.messages.reviews = [Review(approved=False, score=0, problems=tuple(problems), fixes=tuple(fixes))]
    rejected = store.advance(rejected, REJECTED, cost=123_456, reason="rejected after 1 revision(s)")
    good = store.create(cycle_id="c1", items=[sample_item(2)])
    good.messages.drafts = [sample_draft()]
    store.advance(good, PUBLISHED, cost=99)

    [line] = _rejections(store, [rejected.id, good.id])
    assert line.startswith("'Data brief' cost 0.123456 credits: placeholder_title: ")
    assert "raw_html: " in line and "too_short: " in line


def test_above_the_pause_threshold_a_demo_cycle_always_fits_an_item(tmp_path: Path) -> None:
    """Between min_balance and one item's worst case a cycle plans nothing and the gate does not pause: the
    demo would spin until its cycles ran out (seen: a first cycle of 0.14 left 0.36 over a min_balance of 0.35,
    under the 0.38 worst case of the time). The threshold is at least that worst case, and the funding clears it."""
    from types import SimpleNamespace

    from agents.orchestrator import Orchestrator
    from daemon.demo.loop import FUND, TIP
    from kernel.money import parse_credits

    settings = demo_settings(tmp_path, "http://127.0.0.1:9/feed.xml")
    planner = Orchestrator(SimpleNamespace(settings=settings, llm=None, clock=lambda: None))
    worst = planner.item_estimate()
    assert 0 < worst <= settings.budget.min_balance
    assert parse_credits(FUND) > settings.budget.min_balance
    assert settings.budget.per_cycle_cap >= worst
    # the lowest balance a pause can leave (one worst-case item under the threshold) plus the tip resumes
    assert settings.budget.min_balance - worst + parse_credits(TIP) >= settings.budget.resume_balance
