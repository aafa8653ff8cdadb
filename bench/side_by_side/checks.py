"""The same deterministic quality checks on every side's output: agents/quality.py's findings, plus the length.

    reference(item)              the FeedItem and the Brief a draft for this item is judged against: the
                                 brief made from the item by code (agents.research.item_brief), the same
                                 for every side, so no side is judged against its own research
    verdict(draft, item, words)  the finding codes (empty: the output passes)

The AI disclosure is selfpub's own requirement, not the job's: its lines (the defaults of [disclosure]) are
taken out of every draft before the checks and the disclosure gate is off; the other gates run with the
daemon's defaults (review.* in config/settings.py).
"""

from __future__ import annotations

import hashlib
import re

import yaml
from pydantic import ValidationError

from agents.messages import Brief, Draft, FeedItem
from agents.quality import quality_findings
from agents.research import item_brief
from bench.side_by_side.model import count_words
from config.settings import DisclosureSettings, ReviewSettings

NO_DISCLOSURE = DisclosureSettings(enabled=False)
DISCLOSURE_LINES = tuple(DisclosureSettings.model_fields[k].default.strip() for k in ("body", "bluesky"))
_LINE = re.compile(r"^\s*\**(?P<key>tags|description|bluesky)\**\s*:\s*(?P<value>.*)$", re.IGNORECASE)


def reference(item: dict) -> tuple[FeedItem, Brief]:
    """The item as a FeedItem, and the brief code makes of it."""
    feed_item = FeedItem(feed_url="bench", url=item["url"], title=item["title"], summary=item["summary"],
                         content_hash=hashlib.sha256(item["url"].encode()).hexdigest(), tags=tuple(item.get("tags", ())))
    return feed_item, item_brief([feed_item])[0]


def verdict(draft: Draft | None, item: dict, words: int) -> list[str]:
    """Codes of every check the draft fails (too_short_for_bench: under the bench's required words)."""
    if draft is None:
        return ["unreadable"]
    feed_item, brief = reference(item)
    draft = without_disclosure(draft)
    codes = [f.code for f in quality_findings(draft, brief, [feed_item], review=ReviewSettings(), disclosure=NO_DISCLOSURE)]
    if count_words(draft.body_markdown) < words:
        codes.append("too_short_for_bench")
    return codes


def without_disclosure(draft: Draft) -> Draft:
    """The draft with selfpub's disclosure lines taken out of its body and Bluesky text."""
    body, bsky = draft.body_markdown, draft.bsky_text
    for line in DISCLOSURE_LINES:
        body, bsky = body.replace(line, ""), bsky.replace(line, "")
    return draft.model_copy(update={"body_markdown": body.strip(), "bsky_text": bsky.strip()})


def outbox_draft(text: str) -> Draft | None:
    """A local-outbox file (YAML front matter, then the body) as a Draft."""
    if not text.startswith("---\n") or "\n---\n" not in text:
        return None
    front, body = text[4:].split("\n---\n", 1)
    meta = yaml.safe_load(front) or {}
    return _draft(meta.get("title", ""), body.strip(), meta.get("tags") or [], meta.get("description", ""),
                  meta.get("bsky_text", ""))


def markdown_draft(text: str) -> Draft | None:
    """A crew's Markdown article ('# Title', the body, then 'Tags:', 'Description:', 'Bluesky:' lines) as a Draft."""
    lines = (text or "").strip().splitlines()
    if not lines or not lines[0].startswith("# "):
        return None
    fields: dict[str, str] = {}
    body = []
    for line in lines[1:]:
        m = _LINE.match(line)
        if m:
            fields[m["key"].lower()] = m["value"].strip()
        else:
            body.append(line)
    tags = [t.strip().lower() for t in fields.get("tags", "").split(",") if t.strip()]
    return _draft(lines[0][2:].strip(), "\n".join(body).strip(), tags, fields.get("description", ""),
                  fields.get("bluesky", ""))


def _draft(title: str, body: str, tags: list, description: str, bsky: str) -> Draft | None:
    try:
        return Draft(title=title, body_markdown=body, tags=tuple(tags)[:4], description=description, bsky_text=bsky)
    except ValidationError:
        return None


def item_of(draft: Draft, items: list[dict]) -> dict | None:
    """The item whose URL the draft cites (None: it cites none)."""
    return next((it for it in items if it["url"] in draft.body_markdown), None)
