"""The writing agent: Brief -> Draft (a Dev.to article and its Bluesky post).

The model is asked for plain Markdown, not JSON (no schema in the prompt, no
escaping in the answer, and small models write Markdown far more reliably):

    # Title
    the article ...
    Tags: a, b, c

`parse_article` reads that deterministically (a reply that is JSON with title
and body_markdown is accepted too). When the shape is wrong (no title line, no
text), one repair call shows the model what was wrong and asks again with the
WriterOutput schema (so a grammar-enforcing server cannot get the shape wrong
twice; the metered client may itself repair that JSON reply once).

Whatever the model gets wrong in form is then fixed by deterministic
post-processing (`finish_draft`): tags normalised, title cut at a word
boundary, the Bluesky text trimmed to leave room for the article link and
hashtags, sources cited when missing. Post-processing never adds a URL that is
not a source, and never hides one the model added: judging those is the
critic's job.

Errors:
    StructuredOutputError  no usable article after the repair call (an LLMError; carries the cost of both calls)
    whatever the LLM client raises (BudgetExceeded, its own errors) passes through
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema

from agents.llm.errors import StructuredOutputError
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
# The title line: "# Title" (also "## Title", "Title: ...", "**Title:** ..."), trailing #s and bold marks dropped.
TITLE_LINE = re.compile(r"^\s*(?:#{1,3}[ \t]+|\**title\**\s*:\**\s*)(?P<title>.*?)[\s#*]*$", re.IGNORECASE)
TAGS_LINE = re.compile(r"^\s*\**tags\**\s*:\**\s*(?P<tags>.*?)\s*$", re.IGNORECASE)
BARE_TITLE_MAX = 150  # a first line this short, not ending a sentence, followed by a blank line, is the title
REPAIR_ECHO_CHARS = 4_000  # of the malformed reply, shown back to the model in the repair call


class WriterOutput(BaseModel):
    """The article as parsed from the model's Markdown, and the schema of the repair call (lenient:
    post-processing enforces the limits).

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


def _unfence(text: str) -> str:
    """The text inside a ```markdown / ```json fenced block wrapping the whole reply, or the text itself."""
    t = (text or "").strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else ""
        if t.rstrip().endswith("```"):
            t = t.rstrip()[:-3]
    return t.strip()


def _json_article(text: str) -> WriterOutput | None:
    """A reply that is a JSON object with title and body_markdown (a model that answered JSON anyway)."""
    try:
        data = json.loads(text, strict=False)
        out = WriterOutput.model_validate(data)
    except (ValueError, ValidationError):
        return None
    return out if out.title.strip() and out.body_markdown.strip() else None


def _split_tags(raw: str) -> list[str]:
    return [t.strip().lstrip("#") for t in re.split(r"[,\s]+", raw.strip("*` ")) if t.strip().lstrip("#")]


def parse_article(text: str) -> tuple[WriterOutput | None, list[str]]:
    """The model's Markdown reply as (WriterOutput, []) or (None, what is wrong with its shape).

    Shape: the first non-empty line is the title ("# Title"; a short line that does not end a sentence,
    followed by a blank line, is accepted too), then the article, then "Tags: a, b" (optional; the last
    such line is taken out of the body wherever it is).
    """
    t = _unfence(text)
    if t.startswith("{"):
        out = _json_article(t)
        if out is not None:
            return out, []
    lines = t.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return None, ["the reply is empty"]
    errors: list[str] = []
    first = lines[0].strip()
    m = TITLE_LINE.match(first)
    title = m["title"].strip().strip("*_").strip() if m else ""
    if not title and len(first) <= BARE_TITLE_MAX and not first.endswith((".", "!", "?", ":", "{", "[")) \
            and (len(lines) == 1 or not lines[1].strip()):
        title = first.strip("*_ ")
    if not title:
        errors.append("the first line is not the title as '# Title'")
    rest = lines[1:] if title else lines
    tags: list[str] = []
    for i in range(len(rest) - 1, -1, -1):
        tm = TAGS_LINE.match(rest[i])
        if tm:
            tags = _split_tags(tm["tags"])
            rest = rest[:i] + rest[i + 1:]
            break
    body = "\n".join(rest).strip()
    if not body:
        errors.append("there is no article text after the title")
    if errors:
        return None, errors
    return WriterOutput(title=title, body_markdown=body, tags=tags), []


def repair_prompt(errors: Sequence[str]) -> str:
    """The user message of the one repair call: what was wrong, and the shape again."""
    listed = "\n".join(f"- {e}" for e in errors)
    return (
        f"Your reply was not in the required shape:\n{listed}\n"
        "Reply again with the same article as JSON: title, body_markdown (the article in Markdown) and tags."
    )


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
        """Write (or rewrite with `fixes`) the article and the Bluesky post for one brief.

        One call for a Markdown article; when its shape is wrong, one repair call (see the module doc).
        """
        messages = self.messages(brief, fixes)
        completion = await self.llm.complete(
            ROLE, messages, max_tokens=self.max_tokens, task_id=task_id, cycle_id=cycle_id,
        )
        cost, calls = completion.cost, completion.calls
        out, errors = parse_article(completion.text)
        if out is None:
            log.info("draft reply malformed, one repair call",
                     extra={"task_id": task_id, "cycle_id": cycle_id, "errors": errors, "cost": completion.cost})
            repair = [
                *messages,
                {"role": "assistant", "content": (completion.text or "")[:REPAIR_ECHO_CHARS]},
                {"role": "user", "content": repair_prompt(errors)},
            ]
            # StructuredOutputError from the metered client (still no shape after its own JSON repair) passes through.
            fixed = await self.llm.complete(
                ROLE, repair, response_model=WriterOutput,
                max_tokens=self.max_tokens, task_id=task_id, cycle_id=cycle_id,
            )
            cost, calls = cost + fixed.cost, calls + fixed.calls
            out = fixed.parsed if isinstance(fixed.parsed, WriterOutput) else parse_article(fixed.text)[0]
            if out is None or not out.body_markdown.strip():
                raise StructuredOutputError(
                    f"{ROLE}: no article in the reply after one repair call: " + "; ".join(errors),
                    errors=list(errors), cost=cost, role=ROLE, model=fixed.model, task_id=task_id,
                )
        draft = finish_draft(out, brief)
        log.info("draft written", extra={"task_id": task_id, "cycle_id": cycle_id, "cost": cost, "calls": calls,
                                         "revision": bool(fixes)})
        return draft
