"""The critic: deterministic checks first, then an LLM review against the brief.

The deterministic checks alone can block a draft: a draft linking anywhere but
its sources or the platforms' own hosts, carrying instruction-like text copied
from a feed, or anything that looks like a secret, is never approved, whatever
the model says; nor is one under the quality floor (agents/quality.py: placeholder
title, prompt echo, too short, raw HTML, no sources, key points missed, bare link
labels, missing tags or AI disclosure). Only a draft that passes them costs an LLM
review. Every problem reads "code: message" (a code machines can match on).

The review's score: on an endpoint that enforces a schema as a grammar (structured=True, the
embedded llama.cpp server) the model answers yes/no checks against the brief's key points and the
score is computed by code from the answers and measured checks (agents/rubric.py); elsewhere the
model gives the score itself (CriticOutput).

Links are judged on what a reader's client will follow, not on how they are spelled:

    body_markdown ── agents.links.article_links (rendered: Markdown, raw HTML, Liquid) ──┐
    title, description ── agents.links.text_urls (scheme URLs, www.) ───────────────────┤
    bsky_text ── text_urls(bluesky=True) (also what Bluesky's detection links) ─────────┼─► LinkPolicy
    canonical_url ───────────────────────────────────────────────────────────────────────┘  (publishers)
                    sources = the brief's sources (+ the article's own URL), platforms = Dev.to/Forem base
                    and bsky.app; relative links resolve against the article's page on the platform.

Errors: whatever the LLM client raises (BudgetExceeded, agents.llm.errors.LLMError) passes through.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.links import Found, article_links, text_urls
from agents.messages import Brief, Draft, FeedItem, Review
from agents.prompts import data_section, load_prompt
from agents.quality import quality_findings
from agents.rubric import Rubric, measured_checks, questions, rubric_model, score_rubric
from agents.protocol import LLM
from agents.text import BSKY_TEXT_MAX, DESCRIPTION_MAX, MAX_TAGS, TITLE_MAX, graphemes, strip_hashtags, valid_tag
from agents.untrusted import looks_like_injection
from agents.writer import LINK_LABEL, article_parts, parts_text
from config.settings import DevtoSettings, DisclosureSettings, ReviewSettings
from publishers import BLUESKY_APP_URL, LinkPolicy

log = logging.getLogger(__name__)
ROLE = "critic"
# The platforms a post may link anywhere on when the daemon does not say (Dev.to's default base, bsky.app).
DEFAULT_PLATFORMS: tuple[str, ...] = (DevtoSettings.model_fields["base_url"].default, BLUESKY_APP_URL)

# Shapes of credentials; a match anywhere in a draft blocks it (invariant 6).
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private key block", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("OpenAI-style API key", re.compile(r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{20,}")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    ("hex private key", re.compile(r"\b0x[0-9a-fA-F]{64}\b")),
    (
        "password or key assignment",
        re.compile(
            r"\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token)\b\s*[:=]\s*['\"]?[^\s'\"]{6,}",
            re.IGNORECASE,
        ),
    ),
)


# Raw HTML that runs code or loads something when a Markdown renderer passes it through.
_ACTIVE_HTML = re.compile(
    r"<\s*/?\s*(script|iframe|frame|object|embed|style|form|input|button|svg|math|img|video|audio|link|meta|base)\b"
    r"|<[^>]*\son[a-z]+\s*=",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_CODE = re.compile(r"```.*?```|~~~.*?~~~|`[^`\n]*`", re.DOTALL)


class CriticOutput(BaseModel):
    """What the model is asked to return."""

    model_config = ConfigDict(extra="ignore")

    score: int = Field(description="0 (unusable) to 10 (publish as is)")
    problems: list[str] = Field(default_factory=list)
    fixes: list[str] = Field(default_factory=list)

    @field_validator("score", mode="before")
    @classmethod
    def _clamp(cls, v: object) -> object:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return max(0, min(10, int(v)))
        return v


def draft_text(draft: Draft) -> str:
    """Every field of a draft a reader will see, as one text."""
    return "\n".join([draft.title, draft.description, draft.body_markdown, draft.bsky_text, draft.canonical_url or ""])


def secret_findings(text: str) -> list[str]:
    """Names of the secret-looking patterns found in the text."""
    return [name for name, pattern in SECRET_PATTERNS if pattern.search(text)]


def link_policy(brief: Brief, *, article_url: str | None = None, platforms: Sequence[str] = ()) -> LinkPolicy:
    """What a draft for this brief may link to: its sources, its own article, the platforms' hosts."""
    return LinkPolicy(sources=(*brief.sources, *([article_url] if article_url else [])),
                      platforms=tuple(platforms), base=article_url)


def link_findings(draft: Draft, policy: LinkPolicy) -> tuple[list[str], list[str]]:
    """(problems, fixes) for every link a reader's client would follow that the policy refuses."""
    found: list[Found] = []
    article, structural = article_links(draft.body_markdown)
    found += article
    for name, text in (("title", draft.title), ("description", draft.description)):
        found += [Found(u, name) for u in text_urls(html.unescape(text))]
    found += [Found(u, "bsky_text") for u in text_urls(html.unescape(draft.bsky_text), bluesky=True)]
    if draft.canonical_url:
        found.append(Found(draft.canonical_url, "canonical_url"))
    problems, fixes = [], []
    for f in found:
        reason = policy.refusal(f.raw)
        if reason is not None:
            shown = " ".join(f.raw.split())[:80] or '""'
            problems.append(f"link_refused: links to {shown} ({f.where}), which {reason}")
            fixes.append(f"remove the link {shown}; link only to the sources (write file names as `code`)")
    problems += [f"link_refused: the article {r}" for r in structural]
    fixes += ["remove the Liquid tags and HTML that embed or redirect; use plain Markdown links"] * len(structural)
    return list(dict.fromkeys(problems)), list(dict.fromkeys(fixes))


def check_draft(  # noqa: PLR0913
    draft: Draft, brief: Brief, items: Sequence[FeedItem] = (), *, article_url: str | None = None,
    platforms: Sequence[str] = (), review: ReviewSettings | None = None, disclosure: DisclosureSettings | None = None,
) -> tuple[list[str], list[str]]:
    """Deterministic checks, the quality floor included; returns (problems, fixes). None: the draft may go to review."""
    problems: list[str] = []
    fixes: list[str] = []
    if len(draft.title) > TITLE_MAX or not draft.title.strip():
        problems.append(f"title_length: title must be 1-{TITLE_MAX} characters (is {len(draft.title)})")
        fixes.append(f"write a title of at most {TITLE_MAX} characters")
    if len(draft.description) > DESCRIPTION_MAX:
        problems.append(f"description_length: description longer than {DESCRIPTION_MAX} characters")
        fixes.append("shorten the description to one sentence")
    if not draft.body_markdown.strip():
        problems.append("empty_body: the article body is empty")
        fixes.append("write the article body")
    n = graphemes(draft.bsky_text)
    if n > BSKY_TEXT_MAX or n == 0:
        problems.append(f"bsky_length: bsky_text has {n} graphemes; it must be 1-{BSKY_TEXT_MAX} to leave room for the link")
        fixes.append(f"write a Bluesky text of at most {BSKY_TEXT_MAX - 20} characters")
    bad_tags = [t for t in draft.tags if not valid_tag(t)]
    if bad_tags or len(draft.tags) > MAX_TAGS:
        problems.append(f"bad_tags: tags must be at most {MAX_TAGS} lowercase alphanumeric words: {list(draft.tags)}")
        fixes.append("use up to 4 single lowercase words as tags")

    text = draft_text(draft)
    link_problems, link_fixes = link_findings(draft, link_policy(brief, article_url=article_url, platforms=platforms))
    problems += link_problems
    fixes += link_fixes
    if _ACTIVE_HTML.search(_CODE.sub(" ", html.unescape(text))):
        problems.append("active_html: contains raw HTML that runs code or loads content (script, iframe, img, on...= handlers)")
        fixes.append("write plain Markdown without HTML tags")

    if looks_like_injection(text):
        problems.append("injection: contains text that reads like instructions to a model")
        fixes.append("remove any sentence addressed to an AI or giving instructions")
    for item in items:
        for field_text in (item.title, item.summary, item.content):
            for sentence in _instruction_sentences(field_text):
                if _norm(sentence) and _norm(sentence) in _norm(text):
                    problems.append(f"feed_instructions: copies instruction-like text from the feed item {item.url}")
                    fixes.append("do not copy text from the feed item that addresses an AI")
                    break

    secrets = secret_findings(text)
    if secrets:
        problems.append("secret: contains secret-looking strings: " + ", ".join(secrets))
        fixes.append("remove every key, token or password from the text")
    for finding in quality_findings(draft, brief, items, review=review, disclosure=disclosure):
        problems.append(finding.problem)
        fixes.append(finding.fix)
    if brief.notes:  # researched and written in one call: what it cites must be in the items
        for problem, fix in grounding_findings(brief):
            problems.append(problem)
            fixes.append(fix)
    return problems, fixes


_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


def grounding_findings(brief: Brief) -> list[tuple[str, str]]:
    """(problem, fix) for an article that cites no item, and for each cited claim with a number its item lacks."""
    if not brief.key_points:
        return [("uncited: the article cites none of its items", "end each sentence that states a fact with its "
                 "item's number, as [1]")]
    text = {n.url: " ".join(n.text.split()) + " " + n.title for n in brief.notes}
    out = []
    for i, kp in enumerate(brief.key_points):
        source = text.get(kp.source_url, "")
        missing = [x for x in dict.fromkeys(_NUMBER.findall(kp.claim)) if x not in source]
        if missing:
            n = next((k for k, note in enumerate(brief.notes, 1) if note.url == kp.source_url), i + 1)
            out.append((f"unsupported: [{n}] does not say {', '.join(missing[:3])} ({kp.claim[:80]})",
                        f"state only what item [{n}] says, or cite the item that says it"))
    return out


def _instruction_sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text or "")
    return [p.strip() for p in parts if len(p.strip()) >= 12 and looks_like_injection(p)]


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


REVIEW_OPENING_WORDS = 60  # of the body the model reads in full: its prose and first claims
REVIEW_CLOSING_WORDS = 25  # and of its end (an abrupt ending is a finding too)
REVIEW_CLAIM_WORDS = 60  # cited sentences in between, each once, at most this many words


def brief_claims(brief: Brief) -> str:
    """What the review checks claims against: the topic and the key claims (their links are checked by code)."""
    return "\n".join([f"topic: {brief.topic}", *(f"- {kp.claim}" for kp in brief.key_points)])


def review_view(draft: Draft) -> str:
    """The draft as the model reviews it: title, description, the opening, each later cited claim once, the end.

    Links are shown as their labels. The deterministic checks have already read every character
    (links, HTML, injected text, secrets); the model judges claims and prose, for which the opening,
    the sentences that cite a source and the ending are the sample that matters.
    """
    sentences = [(bool(LINK_LABEL.search(s)), " ".join(LINK_LABEL.sub(r"\1", s).split()))
                 for s in _SENTENCE.split(draft.body_markdown)]
    sentences = [(cited, text) for cited, text in sentences if text]
    head, n = 0, 0
    while head < len(sentences) and n < REVIEW_OPENING_WORDS:
        n += len(sentences[head][1].split())
        head += 1
    tail, n = len(sentences), 0
    while tail > head and n < REVIEW_CLOSING_WORDS:
        tail -= 1
        n += len(sentences[tail][1].split())
    shown = {text for _, text in sentences[:head] + sentences[tail:]}  # a sentence said twice is reviewed once
    middle, budget = [], REVIEW_CLAIM_WORDS
    for cited, text in sentences[head:tail]:
        if cited and text not in shown and len(text.split()) <= budget:
            middle.append(text)
            shown.add(text)
            budget -= len(text.split())
    skipped = sum(len(t.split()) for _, t in sentences[head:tail]) - sum(len(t.split()) for t in middle)
    parts = [" ".join(t for _, t in sentences[:head])]
    if tail > head:
        parts += [*middle, f"[{skipped} more words]" if skipped else "", " ".join(t for _, t in sentences[tail:])]
    lines = [f"title: {draft.title}", f"description: {draft.description}", " … ".join(p for p in parts if p)]
    post = strip_hashtags(draft.bsky_text)
    if post and post.rstrip(".…") != draft.title.rstrip(".…"):  # the post says more than the title
        lines.append(f"bluesky: {post}")
    return "\n".join(lines)


def notes_view(draft: Draft, brief: Brief, disclosure: DisclosureSettings,
               previous: tuple[Draft, Review] | None = None) -> str:
    """The topic and the article's parts (§0 the title), citations as [n]; after a revision only the parts that
    differ from the previous draft, under the problems they were revised for (all parts when none differ)."""
    parts = article_parts(draft, disclosure)
    wanted = list(range(len(parts)))
    lines = [f"topic: {brief.topic}"]
    if previous is not None:
        before = article_parts(previous[0], disclosure)
        changed = [k for k in wanted if k >= len(before) or parts[k] != before[k]]
        if 0 < len(changed) < len(parts):
            wanted = changed
            lines.append("revised for: " + "; ".join(p.split(": ", 1)[-1] for p in previous[1].problems)[:300])
    return "\n".join([*lines, parts_text(parts, wanted)])


class Critic:
    """Reviews a draft: deterministic checks, then one LLM call when they pass."""

    def __init__(
        self, llm: LLM, settings: ReviewSettings | None = None, *, max_tokens: int | None = None,
        platforms: Sequence[str] = DEFAULT_PLATFORMS, disclosure: DisclosureSettings | None = None,
        structured: bool = False,
    ):
        self.llm = llm
        self.settings = settings or ReviewSettings()
        self.disclosure = disclosure or DisclosureSettings()
        self.max_tokens = max_tokens
        self.platforms = tuple(platforms)  # e.g. (settings.publishers.devto.base_url, "https://bsky.app")
        # the endpoint enforces a schema as a grammar (llama.cpp): yes/no checks, the score computed by code
        self.structured = structured
        self.prompt = load_prompt("critic_rubric" if structured else "critic")

    def messages(self, draft: Draft, brief: Brief, previous: tuple[Draft, Review] | None = None) -> list[dict[str, str]]:
        """The chat messages of one review call: compact views of the brief and the draft (and the rubric).

        A draft the writer researched and wrote in one call (its brief has notes) is read whole, part by
        part; after a revision (`previous`: the draft and review before it), only the parts that changed.
        """
        if brief.notes and not self.structured:
            return load_prompt("critic_notes").render(draft=data_section("draft", notes_view(
                draft, brief, self.disclosure, previous)))
        extra = {"questions": questions(brief)} if self.structured else {}
        return self.prompt.render(brief=data_section("brief", brief_claims(brief)),
                                  draft=data_section("draft", review_view(draft)), **extra)

    async def review(
        self,
        draft: Draft,
        brief: Brief,
        *,
        items: Sequence[FeedItem] = (),
        task_id: str,
        cycle_id: str,
        article_url: str | None = None,
        previous: tuple[Draft, Review] | None = None,
    ) -> Review:
        """Check the draft; approved only when every check passes and the score reaches review.min_score."""
        problems, fixes = check_draft(draft, brief, items, article_url=article_url, platforms=self.platforms,
                                      review=self.settings, disclosure=self.disclosure)
        if problems:
            log.info("draft blocked by checks", extra={"task_id": task_id, "problems": problems})
            return Review(approved=False, score=0, problems=tuple(problems), fixes=tuple(fixes))
        if self.structured:
            return await self._rubric(draft, brief, task_id=task_id, cycle_id=cycle_id)
        completion = await self.llm.complete(
            ROLE, self.messages(draft, brief, previous), response_model=CriticOutput,
            max_tokens=self.max_tokens, task_id=task_id, cycle_id=cycle_id,
        )
        out = completion.parsed
        if not isinstance(out, CriticOutput):
            out = CriticOutput.model_validate_json(completion.text)
        approved = out.score >= self.settings.min_score
        problems = [f"review: {p.strip()}" for p in out.problems if p.strip()][:8]
        if not approved and not problems:
            problems = [f"low_score: score {out.score} below the minimum {self.settings.min_score}"]
        review = Review(
            approved=approved, score=out.score, problems=tuple(problems),
            fixes=tuple(f for f in out.fixes if f.strip())[:8],
        )
        log.info("draft reviewed", extra={"task_id": task_id, "score": review.score, "approved": approved})
        return review

    async def _rubric(self, draft: Draft, brief: Brief, *, task_id: str, cycle_id: str) -> Review:
        """One call under the brief's rubric schema (agents/rubric.py); the score is computed from the answers."""
        model = rubric_model(brief)
        completion = await self.llm.complete(ROLE, self.messages(draft, brief), response_model=model,
                                             max_tokens=self.max_tokens, task_id=task_id, cycle_id=cycle_id)
        out = completion.parsed if isinstance(completion.parsed, Rubric) else model.model_validate_json(completion.text)
        measured = measured_checks(draft, brief, self.disclosure.body if self.disclosure.enabled else "")
        result = score_rubric(out.model_dump(), brief, measured)
        approved = result.score >= self.settings.min_score
        problems = result.problems if approved else (  # the verdict first: lists of reasons are shown cut
            f"low_score: {result.passed} of {result.total} checks passed, score {result.score} below the minimum "
            f"{self.settings.min_score}", *result.problems)
        review = Review(approved=approved, score=result.score, problems=problems[:8], fixes=result.fixes[:8])
        log.info("draft reviewed", extra={"task_id": task_id, "score": review.score, "approved": approved,
                                          "checks_passed": result.passed, "checks": result.total})
        return review
