"""Text helpers the writer and the critic share: graphemes, tags, URLs, truncation.

URL equality (`same_url`) is decided by publishers.urls.resolve, the link policy's own resolution.

Bluesky counts graphemes, not characters: a flag or a skin-toned emoji is one.
The Bluesky post is composed by the publisher as `bsky_text` + a newline + the
article link, so `bsky_text` (hashtags included) must leave BSKY_LINK_RESERVE
graphemes free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import grapheme

from publishers import resolve

BSKY_MAX_GRAPHEMES = 300
BSKY_LINK_RESERVE = 100  # a newline and a Dev.to article URL of up to 99 graphemes
BSKY_TEXT_MAX = BSKY_MAX_GRAPHEMES - BSKY_LINK_RESERVE
TITLE_MAX = 128
DESCRIPTION_MAX = 200
MAX_TAGS = 4

TAG_RE = re.compile(r"^[a-z0-9]{1,30}$")
_URL_CHARS = r"[^\s<>()\[\]\"'`]+"
_MD_LINK = re.compile(r"\[[^\]]*\]\(\s*<?(" + _URL_CHARS + r")>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^>\s]+)>")
_BARE_URL = re.compile(r"(?:(?:https?|ftp)://|www\.)" + _URL_CHARS, re.IGNORECASE)
_HASHTAG = re.compile(r"(?<!\w)#([\w]+)")
_TRAILING = ".,;:!?'\")]}*_"


def graphemes(text: str) -> int:
    """Number of user-perceived characters (what Bluesky counts)."""
    return grapheme.length(text)


def truncate_graphemes(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut `text` to at most `limit` graphemes, at a word boundary when one is near."""
    if graphemes(text) <= limit:
        return text
    keep = grapheme.slice(text, 0, max(limit - graphemes(ellipsis), 0))
    cut = keep.rstrip()
    space = cut.rfind(" ")
    if space >= len(cut) // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + ellipsis


def truncate_words(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters at a word boundary (no ellipsis)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > 0 else text[:limit]
    return cut.rstrip(" ,;:-")[:limit]


def normalise_tag(tag: str) -> str | None:
    """Lowercase alphanumeric form of a tag ("#Machine-Learning" -> "machinelearning"), or None."""
    cleaned = "".join(c for c in tag.lower() if c.isascii() and c.isalnum())[:30]
    return cleaned or None


def normalise_tags(tags: Iterable[str], limit: int = MAX_TAGS) -> tuple[str, ...]:
    """Valid, de-duplicated tags, at most `limit`, in their first order."""
    out: list[str] = []
    for t in tags:
        n = normalise_tag(t)
        if n and n not in out:
            out.append(n)
        if len(out) == limit:
            break
    return tuple(out)


def valid_tag(tag: str) -> bool:
    """True for a lowercase alphanumeric tag of 1-30 characters."""
    return bool(TAG_RE.match(tag))


def _clean_url(url: str) -> str:
    url = url.strip()
    while url and url[-1] in _TRAILING:
        # keep a closing parenthesis that belongs to the URL, e.g. wiki links
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def extract_urls(text: str) -> list[str]:
    """Every URL in markdown text: link targets, autolinks and bare URLs, in order, de-duplicated."""
    found: list[str] = []

    def add(u: str) -> None:
        u = _clean_url(u)
        if u and u not in found:
            found.append(u)

    rest = text
    for m in _MD_LINK.finditer(text):
        add(m.group(1))
    rest = _MD_LINK.sub(" ", rest)
    for m in _AUTOLINK.finditer(rest):
        add(m.group(1))
    rest = _AUTOLINK.sub(" ", rest)
    for m in _BARE_URL.finditer(rest):
        add(m.group(0))
    return found


def strip_urls(text: str) -> str:
    """Text with every URL removed (markdown links keep their label)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = _AUTOLINK.sub("", text)
    text = _BARE_URL.sub("", text)
    return " ".join(text.split())


def strip_hashtags(text: str) -> str:
    """Text without #hashtags."""
    return " ".join(_HASHTAG.sub("", text).split())


def hashtags(tags: Iterable[str]) -> str:
    """'#a #b' for the given tags."""
    return " ".join(f"#{t}" for t in tags)


def same_url(a: str, b: str) -> bool:
    """URLs that open the same page: resolved as a browser does (publishers.urls), fragment and trailing slash aside."""
    ta, tb = resolve(a), resolve(b)
    if ta is None or tb is None:
        return a.strip().rstrip("/") == b.strip().rstrip("/")
    return ta.page == tb.page
