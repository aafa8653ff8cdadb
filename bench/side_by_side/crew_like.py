"""The like-for-like crew: a brief made in code, a writer, a critic that scores without rewriting.

No framework: plain chat calls to the same counting server (tagged "crew"), the shape of a
hand-built crew doing the same job as selfpub, under the same rules:

    item ── code: fetch the article page from the same local site, extract it with the same extractor
    │       (agents.feeds.extract_main_text), cap it as selfpub's research prompt does ─► brief text
    ├─► writer: the article, its Sources list, Tags, description and Bluesky text      one call
    │           (inline_links=False: told to link only in the Sources list, as selfpub's writer is)
    ├─► critic: reads the brief and the whole draft ─► {score, problems, fixes}         one call
    └─► score < min_score, revisions left: the writer again with the brief, its draft and the critique,
        then the critic again (review.min_score 6 and review.max_revisions 2, selfpub's defaults)

An item is published when its last review passes; its article is what the checks (checks.py) judge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

from agents.feeds import extract_main_text
from agents.research import PROMPT_CONTENT_CHARS, PROMPT_SUMMARY_CHARS

MIN_SCORE = 6
MAX_REVISIONS = 2
TAG = "crew"

WRITER_SYSTEM = (
    "You are the writer of a crew that publishes technical articles on Dev.to. Your goal: a clear, accurate "
    "article for developers, built only from the material you are given. You cite every source as a markdown link."
)
CRITIC_SYSTEM = (
    "You are the reviewer of a crew that publishes technical articles on Dev.to. Check the draft against the "
    "material: is every claim supported, does it read well, does it meet the output requirements? You score it, "
    "you do not rewrite it."
)


def requirements(words: int, inline_links: bool = True) -> str:
    """The output requirements, the same as selfpub's published output (title, article, sources, tags, texts);
    inline_links=False: the sources only in the Sources list, as selfpub's writer is asked."""
    cite = "cite the source as markdown links [label](url)" if inline_links else "write no links in the text"
    return (f"Write an article of at least {words} words. Use only facts from the material; {cite}. "
            "Reply in Markdown: first line \"# \" and a title of at most 100 characters, "
            "then the article, then a \"## Sources\" list of links, then the lines \"Tags: \" (up to 4 lowercase "
            "words), \"Description: \" (one sentence) and \"Bluesky: \" (a post of at most 280 characters).")


def brief_text(item: dict, article: str) -> str:
    """The brief made in code: the item and its article's text, capped as selfpub's research prompt caps them."""
    summary = " ".join(item["summary"].split())[:PROMPT_SUMMARY_CHARS]
    lines = [f"Topic: {item['title']}", f"Title: {item['title']}", f"URL: {item['url']}", f"Summary: {summary}"]
    if article:
        lines.append(f"Article: {article[:PROMPT_CONTENT_CHARS]}")
    return "\n".join(lines)


@dataclass
class CrewResult:
    """What the crew made of one item."""

    item: dict
    article: str = ""
    approved: bool = False
    revisions: int = 0
    scores: list[int] = field(default_factory=list)


@dataclass
class LikeForLikeCrew:
    """The crew over a chat endpoint (base_url ".../v1") and the site its items' articles are on."""

    base_url: str
    words: int = 300
    inline_links: bool = True  # False: the writer is told to link the source only in the Sources list
    tag: str = TAG
    model: str = "bench-model"
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    def chat(self, system: str, user: str, max_tokens: int) -> str:
        """One chat call; the reply's text."""
        r = self.client.post(f"{self.base_url}/chat/completions", headers={"x-bench-client": self.tag}, json={
            "model": self.model, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]})
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"] or ""

    def review(self, brief: str, draft: str) -> tuple[int, list[str]]:
        """The critic's score and its problems and fixes (a reply that is not JSON scores 0)."""
        reply = self.chat(CRITIC_SYSTEM, f"{brief}\n\nDraft:\n{draft}\n\nReply with JSON only: "
                                         '{"score": 0-10, "problems": ["..."], "fixes": ["..."]}', 256)
        try:
            out = json.loads(reply)
            return int(out.get("score", 0)), [*out.get("problems", []), *out.get("fixes", [])]
        except (ValueError, TypeError, AttributeError):
            return 0, ["the review was not JSON"]

    def run_item(self, item: dict) -> CrewResult:
        """Brief, write, review, revise while the score is low and revisions are left."""
        page = self.client.get(item["url"])
        article = extract_main_text(page.content) if page.status_code == 200 else ""
        brief = brief_text(item, article)
        out = CrewResult(item)
        out.article = self.chat(WRITER_SYSTEM, f"{brief}\n\n{requirements(self.words, self.inline_links)}", 1024)
        while True:
            score, notes = self.review(brief, out.article)
            out.scores.append(score)
            if score >= MIN_SCORE:
                out.approved = True
                return out
            if out.revisions >= MAX_REVISIONS:
                return out
            out.revisions += 1
            critique = "\n".join(f"- {n}" for n in notes)
            out.article = self.chat(WRITER_SYSTEM, f"{brief}\n\nYour previous draft:\n{out.article}\n\nThe reviewer's "
                                                   f"notes:\n{critique}\n\nRewrite the article. {requirements(self.words, self.inline_links)}",
                                    1024)

    def run(self, items: list[dict]) -> list[CrewResult]:
        """Every item in turn."""
        try:
            return [self.run_item(it) for it in items]
        finally:
            self.client.close()
