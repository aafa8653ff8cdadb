"""The research agent: feeds -> new items -> one sourced Brief per chosen set of items.

`collect(feeds)` fetches every feed (agents.feeds), keeps only items never
seen before (canonical URL or content hash, persisted in the research store)
and skips near-duplicates of topics already covered or of another new item
of the same cycle (MinHash, agents.dedupe). Seen items are recorded at
collection: an item not chosen this cycle is not offered again.

`brief(items)` asks the model for a Brief with the feed items inside a data
section of the user message only, then enforces deterministically what the
model may have got wrong or been talked into: every source and key point URL
is one of the items' URLs, no other URL and no instruction-like sentence
survives in the text. Items whose summary + content is shorter than
`research.llm_brief_min_chars` are not sent to the model at all (it would only
restate them): `item_brief` builds the Brief from the items themselves (topic
from the title, angle from the first sentence, one key point per summary
sentence), through the same `sanitise_brief`. No call, no cost.

With `one_call=True` (research.brief = "writer", the default on a Markdown endpoint) a longer item is not
briefed by a call of its own either: `notes_brief` carries the items' material (`Brief.notes`, the same
text and caps the research prompt would send) and the writer reads it, researching and writing in one
call; the sentences it cites as [n] become the brief's key points (agents/writer.py). One call where
there were two: the material is read once, and no brief is written out and read back in.

Errors:
    ResearchError        retryable None: the model's answer could not be read as a brief (carries
                         task_id); the orchestrator counts an attempt
    (LLM errors, BudgetExceeded)  pass through from the LLM client unchanged
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.json_schema import SkipJsonSchema

from agents.dedupe import NearDuplicateIndex, canonical_url, signature, signature_bytes, signature_from_bytes, url_key
from agents.feeds import FeedFetcher, FeedReport
from agents.messages import Brief, FeedItem, KeyPoint, Note
from agents.prompts import data_section, load_prompt
from agents.protocol import LLM
from agents.research_store import ResearchStore, seen_row
from agents.untrusted import drop_bare_links_except, drop_urls_except, looks_like_injection, strip_injection
from config.settings import FeedSettings, ResearchSettings

log = logging.getLogger(__name__)
tracer = trace.get_tracer("selfpub.agents")

ROLE = "research"
MAX_KEY_POINTS = 12  # Brief.key_points max_length
MAX_TOPIC_CHARS = 200
MAX_ANGLE_CHARS = 500
MAX_CLAIM_CHARS = 500
PROMPT_TITLE_CHARS = 300  # per item, in the prompt
PROMPT_SUMMARY_CHARS = 1_000  # per item: enough for a few key points, and a small model's context
PROMPT_CONTENT_CHARS = 3_000
ITEM_BRIEF_KEY_POINTS = 6  # as many as the model is asked for
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class ResearchError(Exception):
    """The model's answer was not a usable brief."""

    retryable: bool | None = None

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id


class ResearchPoint(BaseModel):
    """One claim as the model states it."""

    model_config = ConfigDict(extra="ignore")

    claim: str
    source_url: str = ""


class ResearchAnswer(BaseModel):
    """The JSON the research model is asked for (lenient; `sanitise_brief` makes the Brief).

    `sources` is not asked for (not in the schema sent): the key points' sources are the brief's.
    A model that lists sources anyway is still heard.
    """

    model_config = ConfigDict(extra="ignore")

    topic: str
    angle: str = ""
    key_points: list[ResearchPoint] = []
    sources: SkipJsonSchema[list[str]] = []


@dataclass
class Collection:
    """New items of one cycle and how each feed went."""

    items: list[FeedItem] = field(default_factory=list)
    reports: list[FeedReport] = field(default_factory=list)
    already_seen: int = 0
    near_duplicates: int = 0


# -- enforcing the answer --------------------------------------------------------------


def _resolver(items: Sequence[FeedItem]):
    allowed = {it.url: it.url for it in items}
    numbered = {str(i + 1): it.url for i, it in enumerate(items)}

    def resolve(value: str) -> str | None:
        raw = (value or "").strip().strip("<>[]()\"'")
        if raw in numbered:  # small models sometimes cite the item number
            return numbered[raw]
        canon = canonical_url(raw)
        return allowed.get(canon) if canon else None

    return resolve


def clean_text(text: str, items: Sequence[FeedItem], limit: int) -> str:
    """Model text with instruction-like sentences and every URL not among the items removed."""
    urls = [it.url for it in items]
    hosts = {urlsplit(u).hostname or "" for u in urls}
    text = strip_injection(" ".join((text or "").split()))
    text = drop_bare_links_except(drop_urls_except(text, urls), hosts)
    if looks_like_injection(text):
        return ""
    return text[:limit].strip()


def sanitise_brief(answer: ResearchAnswer, items: Sequence[FeedItem]) -> Brief:
    """The Brief the model's answer may become: sources only from the items, no injected text or links."""
    resolve = _resolver(items)
    points: list[KeyPoint] = []
    for p in answer.key_points:
        url = resolve(p.source_url)
        claim = clean_text(p.claim, items, MAX_CLAIM_CHARS)
        if url and claim and len(points) < MAX_KEY_POINTS:
            points.append(KeyPoint(claim=claim, source_url=url))
    sources = list(dict.fromkeys([u for u in map(resolve, answer.sources) if u] + [p.source_url for p in points]))
    if not sources:
        sources = list(dict.fromkeys(it.url for it in items))
    topic = clean_text(answer.topic, items, MAX_TOPIC_CHARS) or clean_text(items[0].title, items, MAX_TOPIC_CHARS) or "News"
    angle = clean_text(answer.angle, items, MAX_ANGLE_CHARS)
    return Brief(topic=topic, angle=angle, key_points=tuple(points), sources=tuple(sources))


def sentences(text: str) -> list[str]:
    """The sentences of a text, whitespace collapsed (split after . ! ? followed by a space)."""
    return [s for s in _SENTENCE_END.split(" ".join((text or "").split())) if s.strip()]


def brief_size(items: Sequence[FeedItem]) -> int:
    """Characters of text the items carry beyond their titles (summary + content)."""
    return sum(len(it.summary or "") + len(it.content or "") for it in items)


def item_brief(items: Sequence[FeedItem]) -> tuple[Brief, int]:
    """The Brief short items make without a model, and how many sentences the sanitising dropped.

    Topic: the first item's title. Angle: the first sentence that survives cleaning. Key points:
    each summary sentence (the content's when there is no summary), sourced to its item. Then
    exactly what a model's answer goes through (`sanitise_brief`): injected sentences and links out.
    """
    points: list[ResearchPoint] = []
    for it in items:
        for sentence in sentences(it.summary or it.content):
            points.append(ResearchPoint(claim=sentence, source_url=it.url))
    angle = next((c for p in points if (c := clean_text(p.claim, items, MAX_ANGLE_CHARS))), "")
    answer = ResearchAnswer(topic=items[0].title, angle=angle, key_points=points[:ITEM_BRIEF_KEY_POINTS],
                            sources=list(dict.fromkeys(it.url for it in items)))
    brief = sanitise_brief(answer, items)
    return brief, len(answer.key_points) - len(brief.key_points)


def _one_line(text: str, limit: int) -> str:
    return " ".join((text or "").split())[:limit]


def prompt_items(items: Sequence[FeedItem]) -> list[dict]:
    """The items as the data the model sees: only what a brief needs, text on one line and capped.

    The model cites an item by its n (sanitise_brief resolves it to the URL), so URLs are sent once and
    never written back; a summary the article's text already contains (its lead, usually) is sent once.
    """
    out = []
    for i, it in enumerate(items):
        summary = _one_line(it.summary, PROMPT_SUMMARY_CHARS)
        article = _one_line(it.content, PROMPT_CONTENT_CHARS)
        out.append({
            "n": i + 1,
            "url": it.url,
            "title": _one_line(it.title, PROMPT_TITLE_CHARS),
            **({"summary": summary} if summary and summary not in article else {}),
            **({"article": article} if article else {}),
        })
    return out


def item_text(item: dict) -> str:
    """One prompt item's material as one text: its summary (when the article does not contain it), then the article."""
    return " ".join(t for t in (item.get("summary", ""), item.get("article", "")) if t)


def notes_brief(items: Sequence[FeedItem]) -> Brief:
    """The brief of the one-call writer: topic and angle as `item_brief` makes them, the items' material as
    notes (what the research prompt would send), no key points yet (the writer's citations become them)."""
    base, _ = item_brief(items)
    notes = tuple(Note(url=it.url, title=p["title"], text=item_text(p)) for it, p in zip(items, prompt_items(items)))
    return Brief(topic=base.topic, angle=base.angle, sources=tuple(dict.fromkeys(it.url for it in items)), notes=notes)


def research_messages(items: Sequence[FeedItem]) -> list[dict[str, str]]:
    """System instructions from agents/prompts/research.yaml; the items only inside the user message's data section."""
    # Compact JSON: indentation and empty fields are prompt tokens that tell the model nothing.
    payload = json.dumps(prompt_items(items), ensure_ascii=False, separators=(",", ":"))
    return load_prompt("research").render(feed_items=data_section("feed_items", payload), count=str(len(items)))


# -- the agent -------------------------------------------------------------------------


class ResearchAgent:
    """Finds new items in feeds and turns a few of them into a sourced Brief."""

    def __init__(
        self,
        llm: LLM,
        store: ResearchStore,
        settings: ResearchSettings,
        *,
        client: httpx.AsyncClient | None = None,
        fetcher: FeedFetcher | None = None,
        max_tokens: int | None = None,
        one_call: bool = False,
    ) -> None:
        self.llm = llm
        self.one_call = one_call  # long items: notes for the writer's one call instead of a research call
        self.store = store
        self.settings = settings
        self.fetcher = fetcher or (FeedFetcher(client, settings, store) if client is not None else None)
        self.max_tokens = max_tokens
        self._covered = NearDuplicateIndex(settings.near_duplicate_threshold, settings.covered_topics_memory)
        self._covered_upto = 0

    # -- novelty -----------------------------------------------------------------------

    def _refresh_covered(self) -> None:
        # Incremental: other workers on the same database may have covered topics since.
        rows = self.store.covered_signatures(after_id=self._covered_upto)
        for row_id, key, sig in rows:
            self._covered.add(key, signature_from_bytes(sig))
            self._covered_upto = max(self._covered_upto, row_id)

    def novelty(self, item: FeedItem) -> float:
        """1 - the highest similarity of the item to any covered topic (1.0 = nothing like it covered yet)."""
        self._refresh_covered()
        return round(1.0 - self._covered.max_similarity(signature(item.title, item.summary)), 4)

    def is_near_duplicate(self, item: FeedItem, *, refresh: bool = True) -> bool:
        """True when a covered topic is at least research.near_duplicate_threshold similar."""
        if refresh:
            self._refresh_covered()
        sig = signature(item.title, item.summary)
        return not sig.is_empty() and self._covered.duplicate_of(sig) is not None

    def backlog(self, limit: int = 200) -> list[FeedItem]:
        """Items seen in earlier fetches but never covered, minus near-duplicates of covered topics.

        A cycle takes only a few of the new items it finds; the rest wait here, so a
        304 from the feed (nothing new) does not lose them.
        """
        items = [FeedItem.model_validate_json(raw) for raw in self.store.backlog(limit)]
        self._refresh_covered()  # once for the whole backlog, not once per item
        return [it for it in items if not self.is_near_duplicate(it, refresh=False)]

    def mark_covered(self, item: FeedItem) -> None:
        """Record that the item's topic has been written about (persisted; later near-duplicates are skipped)."""
        sig = signature(item.title, item.summary)
        key = url_key(item.url)
        self.store.mark_covered(seen_row(item, key, signature_bytes(sig)))
        self._covered.add(key, sig)

    # -- collecting --------------------------------------------------------------------

    async def collect(self, feeds: Sequence[FeedSettings]) -> Collection:
        """Fetch the feeds and return only new items, each feed's report alongside."""
        if self.fetcher is None:
            raise RuntimeError("ResearchAgent.collect needs an httpx client or a FeedFetcher")
        with tracer.start_as_current_span("research.collect", attributes={"feeds": len(feeds)}) as span:
            results = await self.fetcher.fetch_all(feeds)
            out = Collection(reports=[r.report for r in results])
            candidates = [it for r in results for it in r.items]
            new = self.new_items(candidates, out)
            per_feed: dict[str, int] = {}
            for it in new:
                per_feed[it.feed_url] = per_feed.get(it.feed_url, 0) + 1
            for rep in out.reports:
                rep.items_new = per_feed.get(rep.feed_url, 0)
            out.items = new
            span.set_attribute("items.new", len(new))
            span.set_attribute("items.near_duplicates", out.near_duplicates)
            log.info(
                "research collected",
                extra={"feeds": len(feeds), "candidates": len(candidates), "new": len(new),
                       "seen": out.already_seen, "near_duplicates": out.near_duplicates},
            )
            return out

    def new_items(self, candidates: Sequence[FeedItem], tally: Collection | None = None) -> list[FeedItem]:
        """Items not seen before (URL or content hash) and not near-duplicates; all of them are recorded as seen."""
        tally = tally or Collection()
        keys = [url_key(it.url) for it in candidates]
        seen_keys, seen_hashes = self.store.known(keys, [it.content_hash for it in candidates])
        self._refresh_covered()
        batch = NearDuplicateIndex(self.settings.near_duplicate_threshold)
        rows, new = [], []
        for it, key in zip(candidates, keys):
            if key in seen_keys or it.content_hash in seen_hashes:
                tally.already_seen += 1
                continue
            seen_keys.add(key)
            seen_hashes.add(it.content_hash)
            sig = signature(it.title, it.summary)
            rows.append(seen_row(it, key, signature_bytes(sig)))
            if not sig.is_empty() and (self._covered.duplicate_of(sig) or batch.duplicate_of(sig)):
                tally.near_duplicates += 1
                continue
            if not sig.is_empty():
                batch.add(key, sig)
            new.append(it)
        self.store.record_seen(rows)
        return new

    # -- briefing ----------------------------------------------------------------------

    async def enrich(self, items: Sequence[FeedItem]) -> list[FeedItem]:
        """Items with their article's main text when research.fetch_articles is on (unchanged otherwise)."""
        if not self.settings.fetch_articles or self.fetcher is None:
            return list(items)
        out = []
        for it in items:
            text = await self.fetcher.fetch_article(it.url)
            out.append(it.model_copy(update={"content": text}) if text else it)
        return out

    def needs_model(self, items: Sequence[FeedItem]) -> bool:
        """True when the items carry enough text for a model's brief to add something (research.llm_brief_min_chars)."""
        return brief_size(items) >= self.settings.llm_brief_min_chars

    async def brief(self, items: list[FeedItem], *, task_id: str | None = None, cycle_id: str | None = None) -> Brief:
        """The items -> a Brief whose every URL is one of the items': built from short items, else one LLM call."""
        if not items:
            raise ValueError("brief needs at least one item")
        with tracer.start_as_current_span("research.brief", attributes={"items": len(items), "task.id": task_id or ""}) as span:
            items = await self.enrich(items)
            by_model = self.needs_model(items)
            span.set_attribute("research.llm", by_model)
            if by_model and self.one_call:
                brief = notes_brief(items)
                span.set_attribute("research.notes", len(brief.notes))
                log.info("research brief", extra={"task_id": task_id, "cycle_id": cycle_id, "items": len(items),
                                                  "notes": len(brief.notes), "sources": len(brief.sources), "llm": False})
                return brief
            if not by_model:
                brief, dropped = item_brief(items)
                log.info(
                    "research brief",
                    extra={"task_id": task_id, "cycle_id": cycle_id, "items": len(items), "key_points": len(brief.key_points),
                           "dropped_points": dropped, "sources": len(brief.sources), "llm": False},
                )
                return brief
            completion = await self.llm.complete(
                ROLE, research_messages(items), response_model=ResearchAnswer,
                max_tokens=self.max_tokens, task_id=task_id, cycle_id=cycle_id,
            )
            answer = completion.parsed
            if not isinstance(answer, ResearchAnswer):
                try:
                    answer = ResearchAnswer.model_validate(answer) if answer is not None else ResearchAnswer.model_validate_json(_json_part(completion.text))
                except (ValidationError, ValueError) as e:
                    raise ResearchError(f"research answer is not a brief: {type(e).__name__}", task_id=task_id) from None
            brief = sanitise_brief(answer, items)
            dropped = len(answer.key_points) - len(brief.key_points)
            log.info(
                "research brief",
                extra={"task_id": task_id, "cycle_id": cycle_id, "items": len(items), "key_points": len(brief.key_points),
                       "dropped_points": dropped, "sources": len(brief.sources), "llm": True},
            )
            return brief


def _json_part(text: str) -> str:
    m = re.search(r"\{.*\}", text or "", re.DOTALL)
    if not m:
        raise ValueError("no JSON object in the answer")
    return m.group(0)
