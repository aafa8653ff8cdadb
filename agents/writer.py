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
post-processing (`finish_draft`): tags normalised (the feed's tags, named in a
critic's fix, when the model gave none), title cut at a word boundary, a
"## Sources" section listing every source under a label saying what it supports
(never a bare host), the AI disclosure line (config `[disclosure]`) before it,
and the Bluesky text made of whole sentences of the article (never a cut-off
title), its hashtags and the disclosure, within the room the article link
leaves. Post-processing never adds a URL that is not a source, and never hides
one the model added: judging those is the critic's job.

On an endpoint that enforces a schema as a grammar (the embedded llama.cpp server;
`Writer(structured=True)`), the one call asks instead for the article section by
section, one paragraph per key point, under a schema the server turns into a
grammar (agents/sections.py): the free-text shapes cannot happen there.

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

from agents.citations import body_prose, cited_points, link_citations, show_citations, strip_citations
from agents.links import text_urls
from agents.llm.errors import StructuredOutputError, repairing
from agents.messages import Brief, Draft, Review
from agents.prompts import data_section, load_prompt
from agents.protocol import LLM
from agents.quality import bare_labels, prose, sentences
from agents.sections import sections_article, sections_model
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
    truncate_words,
)
from config.settings import DisclosureSettings

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


def brief_text(brief: Brief, *, with_sources: bool = False) -> str:
    """The brief as a delimited data section: topic, angle and the key points' claims.

    No URLs: the Markdown writer does not link (`cite_sources` lists every source under the article,
    labelled with the claim it supports), so a URL in the prompt would be paid for once in it and again
    in the reply. with_sources: each point with its source, then any source no point cites (the sections
    writer on the embedded model: without them, SmolLM2's grammar-bound reply to a three-point brief came
    back as no JSON, twice; with them it is an article).
    """
    lines = [f"topic: {brief.topic}", f"angle: {brief.angle}", "key points:"]
    if not with_sources:
        lines += [f"- {kp.claim}" for kp in brief.key_points]
        return data_section("brief", "\n".join(lines))
    lines += [f"- {kp.claim} (source: {kp.source_url})" for kp in brief.key_points]
    cited = {kp.source_url for kp in brief.key_points}
    lines += [f"source: {s}" for s in brief.sources if s not in cited]
    return data_section("brief", "\n".join(lines))


SOURCES_HEADING = "## Sources"
SOURCE_LABEL_MAX = 80  # characters of a key point's claim used as its source's link label
_SOURCES_LINE = re.compile(r"^\s{0,3}#{1,6}\s*\**\s*(sources|references)\b", re.IGNORECASE | re.MULTILINE)
_TAGS_FIX = re.compile(r"'Tags:\s*([^']+)'")
# A title opening with a label for the reply ("Data brief: X", "Article on X"): the label goes, X stays.
_META_PREFIX = re.compile(
    r"^\s*(?:(?:data|research)\s+brief|article|blog\s+post|post|title)\s*(?::|-|–|—|\bon\b|\babout\b)\s*", re.IGNORECASE)


def source_label(url: str, brief: Brief | None = None) -> str:
    """What a link to a source says: the claim it supports, else its page name; never a bare host."""
    for kp in brief.key_points if brief else ():
        if same_url(kp.source_url, url) and kp.claim.strip():
            return truncate_words(kp.claim.strip().rstrip(".;:"), SOURCE_LABEL_MAX)
    parts = urlsplit(url)
    slug = parts.path.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    name = " ".join(re.split(r"[-_+]+", slug)).strip()
    host = (parts.hostname or "").removeprefix("www.")
    if name and not name.isdigit():
        return f"{name[:1].upper()}{name[1:]} ({host})" if host else name
    return f"The source page on {host}" if host else "The source"


def cite_sources(body: str, sources: Sequence[str], brief: Brief | None = None) -> str:
    """The body with a "## Sources" section listing every source (a link to a source labelled with only its host
    is given a label saying what it supports)."""
    for label in bare_labels(body):
        for s in sources:
            # only labels of our own sources are rewritten: any other link stays as the model wrote it
            body = body.replace(f"[{label}]({s})", f"[{source_label(s, brief)}]({s})")
    m = _SOURCES_LINE.search(body)
    listed = extract_urls(body[m.start():]) if m else []
    missing = [s for s in sources if not any(same_url(s, u) for u in listed)]
    if not missing:
        return body
    heading = "" if m else f"\n\n{SOURCES_HEADING}\n"
    return body.rstrip() + heading + "\n" + "\n".join(f"- [{source_label(s, brief)}]({s})" for s in missing) + "\n"


def with_disclosure(body: str, line: str) -> str:
    """The body with the disclosure line once, just before its Sources section (or at the end)."""
    line = line.strip()
    body = body.replace(line, "").rstrip()
    m = _SOURCES_LINE.search(body)
    if m is None:
        return f"{body}\n\n{line}\n"
    return f"{body[:m.start()].rstrip()}\n\n{line}\n\n{body[m.start():].strip()}\n"


def post_sentences(*texts: str) -> list[str]:
    """Whole sentences (ending in . ! or ?) of the texts' prose, in order, without links or hashtags."""
    out: list[str] = []
    for text in texts:
        for s in sentences(strip_hashtags(strip_urls(prose(strip_citations(text))))):
            # a sentence naming a host ("news.example.org") would be linked by Bluesky: never in the post
            if s.endswith((".", "!", "?")) and s not in out and not text_urls(s, bluesky=True):
                out.append(s)
    return out


def bsky_post(candidates: Sequence[str], tags: Sequence[str], fallback: str, disclosure: str = "") -> str:
    """The Bluesky text: whole sentences, the hashtags, then the disclosure, within BSKY_TEXT_MAX graphemes.

    The sentences are the first run of consecutive candidates that fits; hashtags are dropped from the
    end before a sentence is; when no sentence fits at all, the fallback (the title) cut at a word and
    closed with a full stop.
    """

    def compose(core: str, tag_list: Sequence[str]) -> str:
        head = f"{core} {hashtags(tag_list)}".strip() if tag_list else core
        return f"{head}\n\n{disclosure}" if disclosure else head

    tag_list = list(tags)
    for n in range(len(tag_list), -1, -1):
        core = ""
        for s in candidates:
            trial = f"{core} {s}".strip()
            if graphemes(compose(trial, tag_list[:n])) <= BSKY_TEXT_MAX:
                core = trial
            elif core:
                break
        if core:
            return compose(core, tag_list[:n])
    room = BSKY_TEXT_MAX - (graphemes(disclosure) + 2 if disclosure else 0) - 1
    core = truncate_words(strip_urls(fallback), room).rstrip(" .…:;,-") or "New article"
    return compose(core + ".", [])


def first_sentence(markdown: str) -> str:
    """The first sentence of an article's prose: links reduced to their labels, headings and lists skipped."""
    for para in re.split(r"\n\s*\n", strip_citations(markdown)):
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


def fix_tags(fixes: Sequence[str]) -> list[str]:
    """The tags a critic's fix asks for ("end the article with the line 'Tags: a, b'"), else []."""
    for f in fixes:
        m = _TAGS_FIX.search(f)
        if m:
            return _split_tags(m.group(1))
    return []


def finish_draft(out: WriterOutput, brief: Brief, disclosure: DisclosureSettings | None = None,
                 tags_hint: Sequence[str] = ()) -> Draft:
    """Deterministic post-processing of the model's output into a valid Draft."""
    disclosure = disclosure or DisclosureSettings()
    tags = normalise_tags(out.tags) or normalise_tags(tags_hint)
    title = _META_PREFIX.sub("", out.title or "").strip() or brief.topic
    title = truncate_words(title, TITLE_MAX) or truncate_words(brief.topic, TITLE_MAX) or "Untitled"
    body = cite_sources(out.body_markdown.strip() or brief.angle, brief.sources, brief)
    if disclosure.enabled:
        body = with_disclosure(body, disclosure.body)
    description = truncate_words(strip_urls(out.description or brief.angle or first_sentence(body)), DESCRIPTION_MAX)
    candidates = post_sentences(out.bsky_text, out.body_markdown, brief.angle)
    bsky = bsky_post(candidates, tags, fallback=title, disclosure=disclosure.bluesky if disclosure.enabled else "")
    return Draft(
        title=title, body_markdown=body, tags=tags, description=description, canonical_url=None, bsky_text=bsky
    )


def notes_text(brief: Brief) -> str:
    """The items' material as the one-call writer reads it: compact JSON in a data section, each item numbered
    (the n it cites; code knows its URL, so no URL is sent)."""
    payload = [{"n": i, "title": n.title, "text": n.text} for i, n in enumerate(brief.notes, 1)]
    return data_section("items", json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


def with_citations(out: WriterOutput, brief: Brief) -> tuple[WriterOutput, Brief]:
    """For a brief with notes: the reply's [n] marks as links to the notes' URLs, and the brief's key points
    re-derived from what the article now cites. Any other brief: both unchanged."""
    if not brief.notes:
        return out, brief
    body = link_citations(out.body_markdown, [n.url for n in brief.notes])
    return (out.model_copy(update={"body_markdown": body}),
            brief.model_copy(update={"key_points": cited_points(body, brief.sources)}))


PART = re.compile(r"^\s*§(\d{1,2})\b[ \t:.)-]*(?P<text>.*)$")
PART_MENTION = re.compile(r"§(\d{1,2})\b")


def article_parts(draft: Draft, disclosure: DisclosureSettings | None = None) -> list[str]:
    """[title, paragraph 1, paragraph 2, ...]: the article a revision edits (no disclosure, no Sources list)."""
    disclosure = disclosure or DisclosureSettings()
    body = body_prose(draft.body_markdown)
    if disclosure.enabled:
        body = body.replace(disclosure.body.strip(), "")
    return [draft.title, *(p.strip() for p in re.split(r"\n\s*\n", body) if p.strip())]


def named_parts(fixes: Sequence[str], problems: Sequence[str], count: int) -> list[int]:
    """The parts (§k) to send a revision: those the fixes name (the edits), else those the problems name,
    else every part."""
    for texts in (fixes, problems):
        named = sorted({int(m.group(1)) for t in texts for m in PART_MENTION.finditer(t) if int(m.group(1)) < count})
        if named:
            return named
    return list(range(count))


def parts_text(parts: Sequence[str], wanted: Sequence[int]) -> str:
    """The parts as a revision or a review reads them: "§k text", citations shown as [n]."""
    return "\n".join(f"§{k} {show_citations(parts[k])}" for k in wanted)


def parse_parts(text: str) -> dict[int, str]:
    """A revision's reply as {k: new text} ("§k text" lines; lines after one belong to it)."""
    out: dict[int, list[str]] = {}
    current: int | None = None
    for line in _unfence(text).splitlines():
        m = PART.match(line)
        if m:
            current = int(m.group(1))
            out[current] = [m["text"]]
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


def apply_parts(parts: Sequence[str], changes: dict[int, str]) -> list[str]:
    """The parts with the changes put in place: §0 the title, an existing §k replaced (removed when empty),
    a §k past the end appended."""
    out: list[str | None] = list(parts)
    for k in sorted(changes):
        text = changes[k]
        if k == 0:
            m = TITLE_LINE.match(text.splitlines()[0]) if text else None
            out[0] = (m["title"].strip() if m else text.strip()) or parts[0]
        elif k < len(parts):
            out[k] = text or None
        elif text:
            out.append(text)
    return [p for p in out if p is not None]


class Writer:
    """Turns a Brief into a Draft with one LLM call, and revises a Draft with one more."""

    def __init__(self, llm: LLM, *, max_tokens: int | None = None, disclosure: DisclosureSettings | None = None,
                 structured: bool = False):
        self.llm = llm
        self.max_tokens = max_tokens
        self.disclosure = disclosure or DisclosureSettings()
        self.structured = structured  # the endpoint enforces a schema as a grammar: write section by section
        self.prompt = load_prompt("writer_sections" if structured else "writer")

    def reads_notes(self, brief: Brief) -> bool:
        """True when this writer researches and writes in one call: the brief carries the items' notes."""
        return bool(brief.notes) and not self.structured

    def messages(self, brief: Brief, fixes: Sequence[str] = ()) -> list[dict[str, str]]:
        """The chat messages of one writer call."""
        fix_text = ""
        # A model-written fix may echo hostile feed text: keep only plain edits.
        fixes = [f for f in fixes if f.strip() and not looks_like_injection(f)]
        if fixes:
            # Fixes come from our critic (deterministic checks or its model), never from a feed.
            fix_text = "\n\nThe previous draft was rejected. Make these fixes:\n" + "\n".join(f"- {f}" for f in fixes)
        if self.reads_notes(brief):
            return load_prompt("writer_notes").render(items=notes_text(brief), fixes=fix_text)
        return self.prompt.render(brief=brief_text(brief, with_sources=self.structured), fixes=fix_text)

    async def draft(self, brief: Brief, *, task_id: str, cycle_id: str, fixes: Sequence[str] = ()) -> Draft:
        """Write (or rewrite with `fixes`) the article and the Bluesky post for one brief (see `write`)."""
        return (await self.write(brief, task_id=task_id, cycle_id=cycle_id, fixes=fixes))[0]

    async def write(self, brief: Brief, *, task_id: str, cycle_id: str,
                    fixes: Sequence[str] = ()) -> tuple[Draft, Brief]:
        """The draft, and the brief to keep with it: a brief with notes gets the article's cited sentences as
        its key points; any other comes back unchanged.

        One call for a Markdown article; when its shape is wrong, one repair call (see the module doc).
        """
        messages = self.messages(brief, fixes)
        if self.structured:
            return await self._sections(brief, messages, task_id=task_id, cycle_id=cycle_id, fixes=fixes), brief
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
            with repairing(completion.cost):
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
        out, brief = with_citations(out, brief)
        draft = finish_draft(out, brief, self.disclosure, tags_hint=fix_tags(fixes))
        log.info("draft written", extra={"task_id": task_id, "cycle_id": cycle_id, "cost": cost, "calls": calls,
                                         "revision": bool(fixes), "key_points": len(brief.key_points)})
        return draft, brief

    async def revise(self, brief: Brief, draft: Draft, review: Review, *, task_id: str,
                     cycle_id: str) -> tuple[Draft, Brief]:
        """The draft revised as the review asks, and the brief to keep with it.

        On a Markdown endpoint the call sends the diff, not the draft: only the parts (§0 the title, §k the
        k-th paragraph) the review names, all of them when it names none, and the model answers only the
        parts it changes. A reply with no part but a whole article is taken as a rewrite. On a grammar
        endpoint the article is written again with the fixes.
        """
        fixes = [f for f in review.fixes if f.strip() and not looks_like_injection(f)]
        if self.structured:
            return await self.write(brief, task_id=task_id, cycle_id=cycle_id, fixes=fixes)
        parts = article_parts(draft, self.disclosure)
        wanted = named_parts(fixes, review.problems, len(parts))
        asked = fixes or [p.split(": ", 1)[-1] for p in review.problems] or ["make it clearer"]
        messages = load_prompt("writer_revise").render(
            parts=data_section("article", parts_text(parts, wanted)), fixes="\n".join(f"- {f}" for f in asked))
        completion = await self.llm.complete(ROLE, messages, max_tokens=self.max_tokens, task_id=task_id,
                                             cycle_id=cycle_id)
        changes = parse_parts(completion.text)
        if changes:
            urls = [n.url for n in brief.notes]
            changed = {k: link_citations(v, urls) for k, v in changes.items()}
            new = apply_parts(parts, changed)
            out = WriterOutput(title=new[0], body_markdown="\n\n".join(new[1:]), tags=list(draft.tags))
        else:
            out, errors = parse_article(completion.text)
            if out is None:  # a model that does not answer in parts: the article is written again with the fixes
                log.info("revision reply has no part and no article; writing the article again",
                         extra={"task_id": task_id, "cycle_id": cycle_id, "errors": errors, "cost": completion.cost})
                return await self.write(brief, task_id=task_id, cycle_id=cycle_id, fixes=fixes)
            out, brief = with_citations(out, brief)
        if brief.notes:
            brief = brief.model_copy(update={"key_points": cited_points(out.body_markdown, brief.sources)})
        revised = finish_draft(out, brief, self.disclosure, tags_hint=fix_tags(fixes))
        log.info("draft revised", extra={"task_id": task_id, "cycle_id": cycle_id, "cost": completion.cost,
                                         "parts_sent": len(wanted), "parts_changed": len(changes)})
        return revised, brief

    async def _sections(self, brief: Brief, messages: list[dict[str, str]], *, task_id: str, cycle_id: str,
                        fixes: Sequence[str]) -> Draft:
        """One call under the brief's sections schema (agents/sections.py); the metered client repairs a bad
        reply once and raises StructuredOutputError when that fails too."""
        model = sections_model(brief, self.max_tokens)
        completion = await self.llm.complete(
            ROLE, messages, response_model=model, max_tokens=self.max_tokens, task_id=task_id, cycle_id=cycle_id,
        )
        parsed = completion.parsed
        if not isinstance(parsed, model):
            try:
                parsed = model.model_validate_json(completion.text)
            except ValidationError as exc:
                raise StructuredOutputError(
                    f"{ROLE}: the reply does not match the sections schema",
                    errors=[str(e["loc"]) for e in exc.errors()],
                    cost=completion.cost, role=ROLE, model=completion.model, task_id=task_id,
                ) from None
        title, body, tags = sections_article(parsed, brief)
        draft = finish_draft(WriterOutput(title=title, body_markdown=body, tags=tags), brief, self.disclosure,
                             tags_hint=fix_tags(fixes))
        log.info("draft written", extra={"task_id": task_id, "cycle_id": cycle_id, "cost": completion.cost,
                                         "calls": completion.calls, "revision": bool(fixes), "sections": True})
        return draft
