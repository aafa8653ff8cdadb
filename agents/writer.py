"""The writing agent: Brief -> Draft (a Dev.to article and its Bluesky post).

The model is asked for JSON; whatever it gets wrong in form is fixed by
deterministic post-processing (`finish_draft`): tags normalised, title cut at
a word boundary, the Bluesky text trimmed to leave room for the article link
and hashtags, sources cited when missing. Post-processing never adds a URL that
is not a source, and never hides one the model added: judging those is the
critic's job.

Errors: whatever the LLM client raises (BudgetExceeded, its own errors) passes through.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from agents.messages import Brief, Draft
from agents.prompts import data_section, load_prompt
from agents.protocol import LLM
from agents.untrusted import looks_like_injection
from agents.text import (
    BSKY_TEXT_MAX,
    DESCRIPTION_MAX,
    TITLE_MAX,
    extract_urls,
    graphemes,
    hashtags,
    normalise_tags,
    same_url,
    strip_hashtags,
    strip_urls,
    truncate_graphemes,
    truncate_words,
)

log = logging.getLogger(__name__)
ROLE = "writer"
LINK_LABEL = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # a markdown link or image; group 1 is its label


class WriterOutput(BaseModel):
    """What the model is asked to return (lenient: post-processing enforces the limits).

    description and bsky_text are not asked for (not in the schema sent): `finish_draft` derives
    them from the brief and the title. A model that writes them anyway is still heard.
    """

    model_config = ConfigDict(extra="ignore")

    title: str
    body_markdown: str
    tags: list[str] = Field(default_factory=list)
    description: SkipJsonSchema[str] = ""
    bsky_text: SkipJsonSchema[str] = ""


def brief_text(brief: Brief) -> str:
    """The brief as a delimited data section: each key point with its source, then any source no point cites."""
    lines = [f"topic: {brief.topic}", f"angle: {brief.angle}", "key points:"]
    lines += [f"- {kp.claim} (source: {kp.source_url})" for kp in brief.key_points]
    cited = {kp.source_url for kp in brief.key_points}
    lines += [f"source: {s}" for s in brief.sources if s not in cited]
    return data_section("brief", "\n".join(lines))


def _label(url: str) -> str:
    host = urlsplit(url).hostname or url
    return host.removeprefix("www.")


def cite_sources(body: str, sources: Sequence[str]) -> str:
    """Append a Sources list with every source the body does not link yet."""
    linked = extract_urls(body)
    missing = [s for s in sources if not any(same_url(s, u) for u in linked)]
    if not missing:
        return body
    heading = "" if "## Sources" in body else "\n\n## Sources\n"
    return body.rstrip() + heading + "\n" + "\n".join(f"- [{_label(s)}]({s})" for s in missing) + "\n"


def bsky_post(text: str, tags: Sequence[str], fallback: str) -> str:
    """The Bluesky text with its hashtags, without links, within BSKY_TEXT_MAX graphemes."""
    core = strip_hashtags(strip_urls(text)) or strip_urls(fallback)
    tag_str = hashtags(tags)
    # Drop hashtags from the end until the core text keeps at least 60 graphemes.
    tag_list = list(tags)
    while tag_list and BSKY_TEXT_MAX - graphemes(hashtags(tag_list)) - 1 < 60:
        tag_list.pop()
    tag_str = hashtags(tag_list)
    room = BSKY_TEXT_MAX - (graphemes(tag_str) + 1 if tag_str else 0)
    core = truncate_graphemes(core, room)
    return f"{core} {tag_str}".strip() if tag_str else core


def first_sentence(markdown: str) -> str:
    """The first sentence of an article's prose: links reduced to their labels, headings and lists skipped."""
    for para in re.split(r"\n\s*\n", markdown):
        text = " ".join(LINK_LABEL.sub(r"\1", para).split())
        if text and not text.startswith(("#", "-", "*", ">", "|", "```")):
            return re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return ""


def finish_draft(out: WriterOutput, brief: Brief) -> Draft:
    """Deterministic post-processing of the model's output into a valid Draft."""
    tags = normalise_tags(out.tags)
    title = truncate_words(out.title or brief.topic, TITLE_MAX) or truncate_words(brief.topic, TITLE_MAX) or "Untitled"
    body = cite_sources(out.body_markdown.strip() or brief.angle, brief.sources)
    description = truncate_words(strip_urls(out.description or brief.angle or first_sentence(body)), DESCRIPTION_MAX)
    bsky = bsky_post(out.bsky_text, tags, fallback=title)
    return Draft(
        title=title, body_markdown=body, tags=tags, description=description, canonical_url=None, bsky_text=bsky
    )


class Writer:
    """Turns a Brief into a Draft with one LLM call."""

    def __init__(self, llm: LLM, *, max_tokens: int | None = None):
        self.llm = llm
        self.max_tokens = max_tokens
        self.prompt = load_prompt("writer")

    def messages(self, brief: Brief, fixes: Sequence[str] = ()) -> list[dict[str, str]]:
        """The chat messages of one writer call."""
        fix_text = ""
        # A model-written fix may echo hostile feed text: keep only plain edits.
        fixes = [f for f in fixes if f.strip() and not looks_like_injection(f)]
        if fixes:
            # Fixes come from our critic (deterministic checks or its model), never from a feed.
            fix_text = "\n\nThe previous draft was rejected. Make these fixes:\n" + "\n".join(f"- {f}" for f in fixes)
        return self.prompt.render(brief=brief_text(brief), fixes=fix_text)

    async def draft(self, brief: Brief, *, task_id: str, cycle_id: str, fixes: Sequence[str] = ()) -> Draft:
        """Write (or rewrite with `fixes`) the article and the Bluesky post for one brief."""
        completion = await self.llm.complete(
            ROLE, self.messages(brief, fixes), response_model=WriterOutput,
            max_tokens=self.max_tokens, task_id=task_id, cycle_id=cycle_id,
        )
        out = completion.parsed
        if not isinstance(out, WriterOutput):
            out = WriterOutput.model_validate_json(completion.text)
        draft = finish_draft(out, brief)
        log.info("draft written", extra={"task_id": task_id, "cycle_id": cycle_id, "cost": completion.cost,
                                         "revision": bool(fixes)})
        return draft
