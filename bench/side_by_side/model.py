"""A deterministic stand-in model: answers what a prompt asks for, from the text in the prompt.

It never invents facts: every sentence it writes comes from the feed items or
the research notes it was given. What it is asked for is read from the request:

    response_format with a schema   research brief | article draft | review, as JSON of that schema
    free text ("Final Answer:")     CrewAI's ReAct format: research notes | article | edited article
    free text, a reviewer           the like-for-like crew's critic: a review as JSON text

An article is composed to `words` words (the benchmark's required length) for
every framework alike, citing the sources as markdown links; when the prompt asks
for them it ends with a Sources list, a Tags line and the platform texts.

Reviews ask for a revision sometimes, alike on every side (`Revisions`): the
first review of a topic fails when a hash of (seed, topic) falls under the rate,
and the review after a revision passes. The reviewer reads only the topic, so
what a side sends it changes the tokens, never the verdict.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DATA_RE = re.compile(r"<<<DATA (feed_items|items)>>>\n(.*?)\n<<<END DATA \1>>>", re.DOTALL)
ITEM_RE = re.compile(r"^Title: (?P<title>.+)\nURL: (?P<url>\S+)\nSummary: (?P<summary>.+)$"
                     r"(?:\nArticle: (?P<content>.+)$)?", re.MULTILINE)
FACT_RE = re.compile(r"^- (?P<claim>.+?) \(source: (?P<url>https?://[^\s)]+)\)\s*$", re.MULTILINE)
TOPIC_RE = re.compile(r"^(?:topic: |# )(?P<topic>.+)$", re.MULTILINE | re.IGNORECASE)
LINKED_RE = re.compile(r"(?:^|(?<=\. ))(?P<claim>[^.\n]+?) \(\[[^\]]*\]\((?P<url>https?://[^)\s]+)\)\)\.")
BRIEF_RE = re.compile(r"<<<DATA brief>>>\n(.*?)\n<<<END DATA brief>>>", re.DOTALL)
POINT_RE = re.compile(r"^- (?P<claim>.+?)\s*$", re.MULTILINE)
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")

# Connecting sentences an article needs between its facts (no claims of their own).
BRIDGES = (
    "This matters to developers who maintain code in production.",
    "Teams that depend on it should read the release notes before upgrading.",
    "The change is worth testing in a staging environment first.",
    "It also changes what a reasonable default looks like for new projects.",
    "Existing tooling may need small updates to take advantage of it.",
    "The details below come straight from the announcement.",
)


@dataclass(frozen=True)
class Item:
    """One feed item found in a prompt."""

    title: str
    url: str
    summary: str
    content: str = ""


@dataclass(frozen=True)
class Fact:
    """One sourced claim."""

    claim: str
    url: str


def items_in(text: str) -> list[Item]:
    """Feed items in a prompt: selfpub's JSON data section, or 'Title:/URL:/Summary:' blocks."""
    m = DATA_RE.search(text)
    if m:
        try:
            data = json.loads(m.group(2))
            # selfpub's one-call writer sends no URL, only the item's n: the "URL" a fact keeps is its mark "[n]"
            return [Item(d.get("title", ""), d.get("url") or (f"[{d['n']}]" if "n" in d and "url" not in d else ""),
                         d.get("summary", ""), d.get("article", "") or d.get("text", ""))
                    for d in data if isinstance(d, dict)]
        except ValueError:
            pass
    return [Item(m["title"].strip(), m["url"].strip(), m["summary"].strip(), (m["content"] or "").strip())
            for m in ITEM_RE.finditer(text)]


def facts_of(items: list[Item], limit: int = 6) -> list[Fact]:
    """Each sentence of the items' summaries, then of their articles, as a claim of that item (each once)."""
    out: list[Fact] = []
    for it in items:
        text = f"{it.summary} {it.content}"
        for s in SENTENCE_RE.split(" ".join(text.split())):
            if s.strip() and s.strip() not in {f.claim for f in out}:
                out.append(Fact(s.strip(), it.url))
    return out[:limit]


def facts_in(text: str) -> list[Fact]:
    """Claims listed as '- claim (source: url)' (a brief, research notes), else the items' sentences, else
    linked sentences of an article."""
    seen, out = set(), []
    for m in FACT_RE.finditer(text):
        key = (m["claim"], m["url"])
        if key not in seen:
            seen.add(key)
            out.append(Fact(m["claim"].strip(), m["url"]))
    if not out:  # a brief's key points without their sources: claims to make, not to link
        m = BRIEF_RE.search(text)
        out = [Fact(p["claim"], "") for p in POINT_RE.finditer(m.group(1))] if m else []
    if not out:
        out = facts_of(items_in(text))
    if not out:  # an article to edit: its linked sentences are the claims
        for m in LINKED_RE.finditer(text):
            key = (m["claim"], m["url"])
            if key not in seen:
                seen.add(key)
                out.append(Fact(m["claim"].strip(), m["url"]))
    return out


def topic_in(text: str, facts: list[Fact]) -> str:
    """The topic line of a brief or research notes."""
    m = TOPIC_RE.search(text)
    if m:
        return m["topic"].strip()
    return facts[0].claim.rstrip(".")[:80] if facts else "Developer news"


def count_words(text: str) -> int:
    """Words of an article as a reader sees them: link URLs and markdown marks are not words."""
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
    return len(re.findall(r"[A-Za-z0-9][A-Za-z0-9'’.-]*", text))


def compose_article(topic: str, facts: list[Fact], words: int) -> str:
    """A markdown article of at least `words` words built from the facts, each source linked."""
    if not facts:
        facts = [Fact(f"{topic} is in the news this week.", "")]
    paragraphs: list[str] = []
    total, i = 0, 0
    while total < words and i < 400:  # bounded
        fact = facts[i % len(facts)]
        link = f" ([the announcement]({fact.url}))" if fact.url else ""  # a label saying what it is, not a host
        if fact.url.startswith("["):  # a citation mark "[n]", as the prompt asks
            link = f" {fact.url}"
        sentence = f"{fact.claim.rstrip('.')}{link}. {BRIDGES[i % len(BRIDGES)]}"
        if i % 3 == 0:
            paragraphs.append(sentence)
        else:
            paragraphs[-1] += " " + sentence
        total = count_words("\n\n".join(paragraphs))
        i += 1
    return "\n\n".join(paragraphs)


def tags_of(topic: str) -> list[str]:
    """Up to 4 lowercase single-word tags from a topic."""
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9]{2,}", topic)]
    stop = {"the", "and", "for", "with", "adds", "now", "its", "new", "into", "from", "makes"}
    return list(dict.fromkeys(w for w in words if w not in stop))[:4] or ["news"]


# -- answers ---------------------------------------------------------------------------------


BY_NUMBER_RE = re.compile(r"source_url[^.\n]*\bn\b")  # the prompt asks to cite an item by its n


def research_json(prompt: str, fields: set[str] | None = None) -> dict[str, Any]:
    """A research brief {topic, angle, key_points, sources} for the items in the prompt: only the fields
    the schema asks for, each point's source as the prompt asks (its item's n, else its URL)."""
    items = items_in(prompt)
    facts = facts_of(items)
    topic = items[0].title if items else "Developer news"
    number = {it.url: str(i + 1) for i, it in enumerate(items)} if BY_NUMBER_RE.search(prompt) else {}
    brief = {
        "topic": topic,
        "angle": f"What {topic} changes for developers.",
        "key_points": [{"claim": f.claim, "source_url": number.get(f.url, f.url)} for f in facts],
        "sources": list(dict.fromkeys(it.url for it in items)),
    }
    return {k: v for k, v in brief.items() if fields is None or k in fields}


def research_notes(prompt: str) -> str:
    """The same brief as free-text research notes."""
    b = research_json(prompt)
    lines = [f"Topic: {b['topic']}", f"Angle: {b['angle']}", "Key points:"]
    lines += [f"- {p['claim']} (source: {p['source_url']})" for p in b["key_points"]]
    lines += ["Sources:"] + [f"- {u}" for u in b["sources"]]
    return "\n".join(lines)


def writer_json(prompt: str, words: int) -> dict[str, Any]:
    """An article draft {title, body_markdown, tags, description, bsky_text} from a brief."""
    facts = facts_in(prompt)
    topic = topic_in(prompt, facts)
    return {
        "title": topic[:95],
        "body_markdown": compose_article(topic, facts, words),
        "tags": tags_of(topic),
        "description": f"What {topic[:80]} changes for developers.",
        "bsky_text": f"New post: {topic}"[:170],
    }


NO_LINKS_RE = re.compile(r"\bwrite no links\b", re.IGNORECASE)


CITE_RE = re.compile(r"item's number, as \[1\]")  # selfpub's one-call writer: cite each fact's item as [n]


def article_text(prompt: str, words: int) -> str:
    """An article in markdown (title heading, then the body) from research notes in the prompt; each fact
    linked to its source unless the prompt says to write no links, or marked [n] when it asks for that."""
    facts = facts_in(prompt)
    topic = topic_in(prompt, facts)
    if CITE_RE.search(prompt):  # the items themselves: the topic is the first item's title, as a research brief's
        items = items_in(prompt)
        topic = items[0].title if items else topic
    elif NO_LINKS_RE.search(prompt):
        facts = [Fact(f.claim, "") for f in facts]
    return f"# {topic}\n\n{compose_article(topic, facts, words)}"


PART_RE = re.compile(r"^§(?P<k>\d+) (?P<text>.*)$", re.MULTILINE)


def revised_parts(prompt: str) -> str:
    """selfpub's revision of parts: each part the fixes name (the first paragraph sent when they name none)
    written again, as long as before: its last sentence replaced by another connecting sentence."""
    parts = {int(m["k"]): m["text"] for m in PART_RE.finditer(prompt)}
    fixes = prompt.split("Fixes:", 1)[-1]
    named = [int(k) for k in re.findall(r"§(\d+)", fixes) if int(k) in parts] or [k for k in parts if k][:1] or [0]
    out = []
    for k in dict.fromkeys(named):
        sentences = SENTENCE_RE.split(parts[k])
        last = sentences[-1] if sentences else ""
        other = next(b for b in BRIDGES if b != last)
        out.append(f"§{k} " + " ".join([*sentences[:-1], other]))
    return "\n".join(out)


PASS = {"score": 8, "problems": [], "fixes": []}
REVISE = {"score": 4, "problems": ["the second section restates the first instead of making its own point"],
          "fixes": ["rewrite the second section: state its key point and what it changes for developers"]}
# The same review of a draft shown in parts marked §k (selfpub's critic asks the problem to name its part).
REVISE_PARTS = {"score": 4, "problems": ["§2 restates §1 instead of making its own point"],
                "fixes": ["rewrite §2: state its key point and what it changes for developers"]}


@dataclass
class Revisions:
    """Which reviews ask for a revision: the first review of a topic, for a seeded share of topics."""

    rate: float = 0.0  # share of topics whose first review fails
    seed: int = 15
    _reviewed: set[tuple[str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wants(self, topic: str) -> bool:
        """True when a first review of this topic fails (deterministic in seed and topic)."""
        digest = hashlib.sha256(f"{self.seed}:{' '.join(topic.split()).lower()}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < self.rate

    def review(self, side: str, topic: str, parts: bool = False) -> dict[str, Any]:
        """The review of a side's draft on a topic: a revision asked once when `wants`, else a pass."""
        with self._lock:
            first = (side, topic) not in self._reviewed
            self._reviewed.add((side, topic))
        return (REVISE_PARTS if parts else REVISE) if first and self.wants(topic) else PASS


def review_json(text: str = "", side: str = "", revisions: Revisions | None = None) -> dict[str, Any]:
    """A review of the draft in the prompt (a pass without a revision plan)."""
    if revisions is None:
        return PASS
    return revisions.review(side, topic_in(text, []), parts=bool(PART_RE.search(text)))


def schema_of(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request asks the reply to follow, if any."""
    fmt = body.get("response_format")
    if not isinstance(fmt, Mapping):
        return None
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema") or {}
    if fmt.get("type") == "json_object":
        return fmt.get("schema") or {}
    return None


def kind_of(body: Mapping[str, Any]) -> str:
    """What a request asks for: brief | draft | review (JSON), research | article | edit (free text), other."""
    schema = schema_of(body)
    if schema is not None:
        keys = set((schema.get("properties") or {}).keys())
        if "key_points" in keys:
            return "brief"
        if "body_markdown" in keys:
            return "draft"
        return "review" if "score" in keys else "other"
    messages = body.get("messages") or []
    system = next((str(m.get("content") or "") for m in messages if m.get("role") == "system"), "")
    role = system.split(".", 1)[0].lower()
    for word, kind in (("research", "research"), ("editor", "edit"), ("reviewer", "review"), ("writer", "article")):
        if word in role:
            return kind
    return "other"


def answer(body: Mapping[str, Any], words: int, side: str = "", revisions: Revisions | None = None) -> str:
    """The reply text for a chat-completions request (`side`: who asks, for the revision plan)."""
    messages = body.get("messages") or []
    text = "\n".join(str(m.get("content") or "") for m in messages)
    user = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") != "system")
    kind = kind_of(body)
    if kind == "brief":
        return json.dumps(research_json(text, set((schema_of(body) or {}).get("properties") or {})))
    if kind == "draft":
        return json.dumps(writer_json(text, words))
    if kind == "review":
        return json.dumps(review_json(user, side, revisions))
    if kind == "other" and schema_of(body) is not None:
        return "{}"
    if kind == "research":
        reply = research_notes(text)
    elif kind == "article" and PART_RE.search(user) and "Fixes:" in user:
        reply = revised_parts(user)
    elif kind in ("article", "edit"):
        reply = article_text(text, words)
        topic = topic_in(text, facts_in(text))
        if "## Sources" in text:  # the prompt asks for a list of the sources
            urls = list(dict.fromkeys(f.url for f in facts_in(text) if f.url))
            reply += "\n\n## Sources\n" + "\n".join(f"- [{topic[:60]}]({u})" for u in urls)
        if "Tags:" in text:  # the prompt asks for a last line of tags (selfpub's writer does)
            reply += "\n\nTags: " + ", ".join(tags_of(topic))
        if "Bluesky:" in text:  # the prompt asks for the platform texts too
            reply += f"\nDescription: What {topic[:80]} changes for developers.\nBluesky: New post: {topic}"[:400]
    else:
        reply = "I have nothing to add."
    if "Final Answer:" in text:
        return f"Thought: I now can give a great answer\nFinal Answer: {reply}"
    return reply
