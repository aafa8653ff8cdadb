"""Bluesky rich text: facets with UTF-8 byte offsets, grapheme counting, threads.

Bluesky counts a post's length in graphemes (user-perceived characters, at
most 300) but addresses facets by UTF-8 byte offsets into the text. Both are
computed here from the same string so emoji, CJK and combining marks agree.

A link facet is what a reader taps, so it is made only for a URL the post's
LinkPolicy allows (publishers.urls): links in the text are found as Bluesky's
own detection finds them (http(s) URLs and bare domains), and one the policy
refuses stays plain text, never a facet. No policy allows nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import grapheme

from publishers.urls import LinkPolicy, text_links

MAX_GRAPHEMES = 300
LINK_DISPLAY_MAX = 32  # graphemes of a shortened link shown in the text

NO_LINKS = LinkPolicy()
# A hashtag starts after whitespace or at the start; not all digits; trailing punctuation dropped.
_TAG = re.compile(r"(?:^|(?<=\s))[#＃]([^\s#＃\u200b-\u200d\u2060\ufe0f]+)")
_TRAILING_PUNCT = ".,;:!?)]}'\""


@dataclass(frozen=True)
class Link:
    """A link shown as `text` (found verbatim in the post text) pointing to `uri`."""

    text: str
    uri: str


def grapheme_length(text: str) -> int:
    """The length Bluesky enforces: user-perceived characters."""
    return grapheme.length(text)


def byte_offset(text: str, char_index: int) -> int:
    """UTF-8 byte offset of a Python (code point) index into text."""
    return len(text[:char_index].encode("utf-8"))


def shorten_url(uri: str, limit: int = LINK_DISPLAY_MAX) -> str:
    """What the official app shows for a long link: host + path, cut with an ellipsis."""
    parts = urlsplit(uri)
    shown = parts.netloc + parts.path.rstrip("/")
    if parts.query:
        shown += "?" + parts.query
    if grapheme.length(shown) <= limit:
        return shown
    return grapheme.slice(shown, 0, limit - 1) + "…"


def _facet(text: str, start: int, end: int, feature: dict) -> dict:
    return {
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": byte_offset(text, start), "byteEnd": byte_offset(text, end)},
        "features": [feature],
    }


def detect_facets(
    text: str, links: tuple[Link, ...] | list[Link] = (), *, policy: LinkPolicy = NO_LINKS
) -> list[dict]:
    """Facets for hashtags and for the allowed links (display-text links, URLs in the text), by byte offset."""
    facets: list[tuple[int, dict]] = []
    taken: list[tuple[int, int]] = []
    for link in links:
        start = text.find(link.text)
        if start < 0 or not link.text:
            continue
        end = start + len(link.text)
        taken.append((start, end))  # refused or not, nothing else may claim its text
        if policy.allows(link.uri):
            facets.append((start, _facet(text, start, end, {"$type": "app.bsky.richtext.facet#link", "uri": link.uri})))
    for start, end, uri in text_links(text):
        if any(s < end and start < e for s, e in taken):
            continue
        taken.append((start, end))
        if policy.allows(uri):
            facets.append((start, _facet(text, start, end, {"$type": "app.bsky.richtext.facet#link", "uri": uri})))
    for m in _TAG.finditer(text):
        tag = m.group(1).rstrip(_TRAILING_PUNCT)
        if not tag or tag.isdigit() or grapheme.length(tag) > 64:
            continue
        start = m.start()
        end = m.start(1) + len(tag)
        if any(s < end and start < e for s, e in taken):
            continue
        facets.append((start, _facet(text, start, end, {"$type": "app.bsky.richtext.facet#tag", "tag": tag})))
    return [f for _, f in sorted(facets, key=lambda x: x[0])]


def split_thread(text: str, limit: int = MAX_GRAPHEMES, *, reserve_first: int = 0) -> list[str]:
    """Cut text into posts of at most `limit` graphemes at word boundaries, numbered "i/n".

    `reserve_first` graphemes are kept free in the first post (for a link appended later).
    """
    text = text.strip()
    if grapheme_length(text) + reserve_first <= limit:
        return [text]
    suffix_room = len(" 99/99")
    words = re.split(r"(\s+)", text)
    parts: list[str] = []
    current = ""
    for word in words:
        room = limit - suffix_room - (reserve_first if not parts else 0)
        candidate = current + word
        if grapheme_length(candidate.strip()) <= room:
            current = candidate
            continue
        if current.strip():
            parts.append(current.strip())
        current = word.lstrip()
        room = limit - suffix_room - (reserve_first if not parts else 0)
        while grapheme_length(current) > room:  # a single over-long word: cut on graphemes
            parts.append(grapheme.slice(current, 0, room))
            current = grapheme.slice(current, room)
            room = limit - suffix_room
    if current.strip():
        parts.append(current.strip())
    n = len(parts)
    return [f"{p} {i}/{n}" for i, p in enumerate(parts, 1)]
