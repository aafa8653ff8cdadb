"""The critic's rubric: a score a small model can give meaning to, computed by code.

A 135M model asked for "a score from 0 to 10" answers a number that says nothing (the demo's
critic gave 0 or 1 to every draft of some runs, 10 to a body "<h1>Data Brief</h1>" before the
quality floor). On an endpoint that enforces a schema as a grammar, the critic asks instead for
yes/no answers to checks against the brief's key points; code adds checks it can measure, and
the score is the share of checks passed, in tenths (rounded down):

    brief ── rubric_model() ──► schema: subject, point_1 .. point_k, agrees, clear   each "yes" | "no"
                                          (k = the brief's key points, at most MAX_POINTS)
    draft ── measured_checks() ──► covers_all_points  every key point's content words in the prose
                                   no_repeats         no sentence said twice
                                   numbers_from_brief no number, version or date the brief does not give
                                   on_topic           half the sentences or more share a content word with it
                                   title_on_subject   the title shares a content word with the topic
    answers + measured ── score_rubric() ──► RubricResult: score = 10 * passed // checks,
                                             each failed check a problem "review: <code>: ..." and a fix
                                             (measured ones first: on a small model they say the most)

Seen on SmolLM2-135M: its answers barely depend on the draft (the same yes/no pattern for a good draft
and a repetitive one), so there the measured checks carry most of the signal; a larger model's answers
carry more. The quality floor (agents/quality.py) has already refused what must never pass; the rubric grades
what is left, so review.min_score keeps its meaning: the share of checks a draft must pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, create_model

from agents.messages import Brief, Draft
from agents.quality import key_point_coverage, prose, sentences, terms

MAX_POINTS = 4  # key points asked about one by one (the prompt stays short for a small context)
ON_TOPIC = 0.5  # share of the prose's sentences that must share a content word with the brief
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
Answer = Literal["yes", "no"]


@dataclass(frozen=True)
class Check:
    """One rubric check: its code, the question (for the model, or what code measured) and the fix."""

    code: str
    question: str
    fix: str


@dataclass(frozen=True)
class RubricResult:
    """The score and the failed checks as the critic stores them."""

    score: int
    passed: int
    total: int
    problems: tuple[str, ...]
    fixes: tuple[str, ...]


class Rubric(BaseModel):
    """The base of every per-brief rubric model (its fields are set by `rubric_model`)."""

    model_config = ConfigDict(extra="ignore")


def model_checks(brief: Brief) -> list[Check]:
    """The checks the model answers, in the order of the schema (the order it answers them in)."""
    out = [Check("subject", f"Is the article about {brief.topic.strip().rstrip('.')}?",
                 f"write about {brief.topic.strip().rstrip('.')}, the brief's topic")]
    for i, kp in enumerate(brief.key_points[:MAX_POINTS], 1):
        claim = kp.claim.strip().rstrip(".")
        out.append(Check(f"point_{i}", f"Does the article say: {claim}?", f"state the key point: {claim}"))
    out.append(Check("agrees", "Does every fact in the article agree with the brief (same numbers, names, versions)?",
                     "keep every number, name and version as the brief gives it"))
    out.append(Check("clear", "Is the article written in clear, complete English sentences?",
                     "write clear, complete sentences"))
    return out


def rubric_model(brief: Brief) -> type[Rubric]:
    """The response model (and so the grammar) of one brief's review: a yes/no field per model check."""
    fields = {c.code: (Answer, ...) for c in model_checks(brief)}
    return create_model("Review", __base__=Rubric, **fields)  # type: ignore[call-overload]


def questions(brief: Brief) -> str:
    """The numbered questions, each with the key the answer goes under."""
    return "\n".join(f"{c.code}: {c.question}" for c in model_checks(brief))


def measured_checks(draft: Draft, brief: Brief, disclosure: str = "") -> list[tuple[Check, bool]]:
    """The checks code measures on the draft, each with whether it passed."""
    body = prose(draft.body_markdown, disclosure)
    coverage, missed = key_point_coverage(brief, body)
    said = [" ".join(s.lower().split()) for s in sentences(body)]
    repeated = len(said) - len(set(said))
    brief_text = " ".join([brief.topic, brief.angle, *(kp.claim for kp in brief.key_points)])
    invented = sorted(set(_NUMBER.findall(body)) - set(_NUMBER.findall(brief_text)))
    brief_terms = terms(brief_text)
    on_topic = sum(bool(terms(s) & brief_terms) for s in said)
    topic_terms = terms(brief.topic)
    return [
        (Check("covers_all_points", "every key point of the brief is in the prose"
               + (f" (missing: {'; '.join(m[:60] for m in missed[:2])})" if missed else ""),
               "make each key point in its own paragraph"), coverage >= 1.0),
        (Check("no_repeats", f"no sentence is said twice ({repeated} repeated)", "say each thing once"), repeated == 0),
        (Check("numbers_from_brief", "every number in the prose is in the brief"
               + (f" (not in it: {', '.join(invented[:3])})" if invented else ""),
               "use only the numbers, versions and dates the brief gives"), not invented),
        (Check("on_topic", f"at least half the sentences speak of the brief's subject ({len(said) - on_topic} of {len(said)} do not)",
               "keep every sentence on the brief's subject"), on_topic >= ON_TOPIC * len(said)),
        (Check("title_on_subject", f"the title names the topic ({brief.topic[:60]})",
               "name the brief's subject in the title"), not topic_terms or bool(topic_terms & terms(draft.title))),
    ]


def score_rubric(answers: Mapping[str, str], brief: Brief, measured: list[tuple[Check, bool]]) -> RubricResult:
    """The score (0-10) from the model's answers and the measured checks; a missing answer counts as "no"."""
    asked = [(c, answers.get(c.code) == "yes", f"no to {c.question!r}") for c in model_checks(brief)]
    results = [(c, ok, f"not so: {c.question}") for c, ok in measured] + asked  # what code measured first
    passed = sum(ok for _, ok, _ in results)
    total = len(results)
    return RubricResult(
        score=10 * passed // total,  # a score of 6 means at least 60% of the checks passed
        passed=passed, total=total,
        problems=tuple(f"review: {c.code}: {why}" for c, ok, why in results if not ok),
        fixes=tuple(c.fix for c, ok, _ in results if not ok),
    )
