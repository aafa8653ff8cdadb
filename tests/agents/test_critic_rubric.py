"""Critic on a grammar-enforcing endpoint: yes/no checks against the brief, the score computed by code
(agents/rubric.py), the real gate (review.min_score) unchanged."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents.critic import Critic
from agents.messages import Brief, KeyPoint
from agents.rubric import measured_checks, model_checks, rubric_model, score_rubric
from config.settings import ReviewSettings
from tests.fakes.scripted_llm import SOURCE, ScriptedLLM, sample_brief, sample_draft

YES = {"subject": "yes", "point_1": "yes", "agrees": "yes", "clear": "yes"}


def _repeating_draft():  # the 135M writer's habit: the same sentence in every paragraph
    said = "The release makes compile times drop by a fifth for most Rust projects."
    return sample_draft(body_markdown=sample_draft().body_markdown.replace(
        "Smaller projects still finish their builds noticeably sooner than before.", said + " " + said))


async def test_the_model_answers_yes_or_no_per_key_point_and_the_score_is_computed() -> None:
    llm = ScriptedLLM().enqueue("critic", YES)
    review = await Critic(llm, structured=True).review(sample_draft(), sample_brief(), task_id="t", cycle_id="c")
    assert review.approved and review.score == 10 and review.problems == ()
    call = llm.calls("critic")[0]
    schema = call.response_model.model_json_schema()
    assert list(schema["properties"]) == ["subject", "point_1", "agrees", "clear"]
    assert all(p["enum"] == ["yes", "no"] for p in schema["properties"].values())
    assert "point_1: Does the article say: Compile times dropped by a fifth?" in call.prompt
    assert "Rust 2026 edition" in call.prompt and "<<<DATA draft>>>" in call.prompt


def test_a_number_from_the_model_is_not_a_score() -> None:
    with pytest.raises(ValidationError):
        rubric_model(sample_brief()).model_validate({"score": 10})
    with pytest.raises(ValidationError):
        rubric_model(sample_brief()).model_validate({**YES, "agrees": "10"})


async def test_no_answers_and_measured_failures_lower_the_score_below_the_gate_with_reasons() -> None:
    llm = ScriptedLLM().enqueue("critic", {**YES, "point_1": "no", "agrees": "no", "clear": "no"},
                                {**YES, "point_1": "no"})
    critic = Critic(llm, ReviewSettings(min_score=6), structured=True)
    draft = _repeating_draft()
    # 9 checks (4 answered, 5 measured): point_1, agrees, clear and no_repeats fail
    bad = await critic.review(draft, sample_brief(), task_id="t", cycle_id="c")
    assert not bad.approved and bad.score == 5
    codes = [p.split(": ")[0] + ": " + p.split(": ")[1] for p in bad.problems]
    assert codes == ["low_score: 5 of 9 checks passed, score 5 below the minimum 6", "review: no_repeats",
                     "review: point_1", "review: agrees", "review: clear"]
    assert bad.fixes == ("say each thing once", "state the key point: Compile times dropped by a fifth",
                         "keep every number, name and version as the brief gives it", "write clear, complete sentences")
    # two checks fewer failed: 7 of 9, score 7, approved; the failed checks are still shown
    ok = await critic.review(draft, sample_brief(), task_id="t", cycle_id="c")
    assert ok.approved and ok.score == 7
    assert [p.split(": ")[1] for p in ok.problems] == ["no_repeats", "point_1"]


def test_numbers_the_brief_does_not_give_and_off_topic_prose_fail_measured_checks() -> None:
    brief = sample_brief()
    invented = sample_draft(body_markdown=sample_draft().body_markdown.replace("by a fifth", "by 35 percent in 2022"))
    failed = {c.code: c.question for c, ok in measured_checks(invented, brief) if not ok}
    assert failed == {"numbers_from_brief": "every number in the prose is in the brief (not in it: 2022, 35)"}
    noise = "3:12am, 2022-08-29, 15:37pm, 2022-08-29, 16:12pm. " * 2
    drift = sample_draft(body_markdown=sample_draft().body_markdown.replace("Upgrading is", noise + "Upgrading is"))
    assert {c.code for c, ok in measured_checks(drift, brief) if not ok} >= {"numbers_from_brief", "no_repeats"}


def test_every_key_point_is_asked_about_up_to_four() -> None:
    points = tuple(KeyPoint(claim=f"Claim number {i} holds", source_url=SOURCE) for i in range(1, 7))
    brief = Brief(topic="Six claims", angle="a", key_points=points, sources=(SOURCE,))
    assert [c.code for c in model_checks(brief)] == ["subject", "point_1", "point_2", "point_3", "point_4",
                                                     "agrees", "clear"]


def test_score_is_the_share_of_checks_passed() -> None:
    brief, draft = sample_brief(), sample_draft()
    measured = measured_checks(draft, brief)
    assert [c.code for c, _ in measured] == ["covers_all_points", "no_repeats", "numbers_from_brief", "on_topic",
                                             "title_on_subject"]
    assert all(ok for _, ok in measured)
    assert score_rubric(YES, brief, measured).score == 10
    most = score_rubric({**YES, "point_1": "no", "agrees": "no"}, brief, measured)  # 7 of 9
    assert (most.score, most.passed, most.total) == (7, 7, 9)
    assert most.problems[0].startswith("review: point_1: no to 'Does the article say: Compile times dropped")
    assert most.fixes == ("state the key point: Compile times dropped by a fifth",
                          "keep every number, name and version as the brief gives it")
    assert score_rubric({}, brief, measured).score == 5  # a missing answer is a no: 5 of 9
