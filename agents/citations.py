"""Citations: the one-call writer's "[n]" marks -> source links in the article -> the brief's key points.

    model's reply          "Rust 1.80 stabilises LazyCell [2]."
        │ link_citations(text, urls)        n -> the n-th note's URL; a mark naming no note is dropped
        ▼
    draft body             "Rust 1.80 stabilises LazyCell ([2](https://blog.rust-lang.org/...))."
        │ cited_points(body, sources)       every sentence citing a source, its citations taken out
        ▼
    Brief.key_points       KeyPoint("Rust 1.80 stabilises LazyCell.", "https://blog.rust-lang.org/...")

The links are made by code from the notes' URLs, never written by the model (a URL written back is paid
for again and may be misspelt). The key points are re-derived from the body after every revision, so
they always say what the published article cites. `show_citations` turns the links back into "[n]" for a
prompt (a revision, a review): the model reads two tokens, not a URL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agents.messages import KeyPoint
from agents.text import same_url, strip_urls
from agents.untrusted import looks_like_injection

MAX_POINTS = 12  # Brief.key_points max_length
MAX_CLAIM_CHARS = 500
# A mark as the model writes it: "[2]", "[1, 2]" (not a Markdown link "[2](...)", not a footnote "[^2]").
MARK = re.compile(r"[ \t]*\[(\d{1,2}(?:\s*,\s*\d{1,2})*)\](?!\()")
# A citation as code writes it into the article.
CITATION = re.compile(r"[ \t]*\(\[(\d{1,2})\]\(<?([^)\s>]+)>?\)\)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SOURCES = re.compile(r"^\s{0,3}#{1,6}\s*\**\s*(sources|references)\b", re.IGNORECASE | re.MULTILINE)
_SKIP = ("#", "|", "```", "~~~", ">")


def link_citations(text: str, urls: Sequence[str]) -> str:
    """The model's "[n]" marks as links to the n-th URL (1-based); a mark naming no URL is removed."""

    def link(m: re.Match[str]) -> str:
        numbers = dict.fromkeys(int(n) for n in m.group(1).split(","))
        return "".join(f" ([{n}]({urls[n - 1]}))" for n in numbers if 1 <= n <= len(urls))

    return MARK.sub(link, text)


def strip_citations(text: str) -> str:
    """Text without its citations (and without any leftover "[n]" mark)."""
    return MARK.sub("", CITATION.sub("", text))


def show_citations(text: str) -> str:
    """Citations shown as "[n]" again (for a prompt): the URL is code's, the model needs only the number."""
    return CITATION.sub(lambda m: f" [{m.group(1)}]", text)


def body_prose(markdown: str) -> str:
    """The article's text before its Sources section."""
    m = _SOURCES.search(markdown)
    return markdown[:m.start()] if m else markdown


def cited_points(markdown: str, sources: Sequence[str]) -> tuple[KeyPoint, ...]:
    """Each sentence that cites a source, once, as a key point of that source (its first citation's)."""
    points: list[KeyPoint] = []
    seen: set[str] = set()
    for para in re.split(r"\n\s*\n", body_prose(markdown)):
        if para.lstrip().startswith(_SKIP):
            continue
        for sentence in _SENTENCE_END.split(" ".join(para.split())):
            cites = [m.group(2) for m in CITATION.finditer(sentence)]
            url = next((s for c in cites for s in sources if same_url(c, s)), None)
            claim = " ".join(strip_urls(strip_citations(sentence)).lstrip("-*+ ").split())[:MAX_CLAIM_CHARS]
            if url is None or not claim or claim in seen or looks_like_injection(claim):
                continue
            seen.add(claim)
            points.append(KeyPoint(claim=claim, source_url=url))
            if len(points) == MAX_POINTS:
                return tuple(points)
    return tuple(points)
