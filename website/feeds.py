"""The Atom feed (RFC 4287) and the sitemap (sitemaps.org 0.9), built with ElementTree (every text escaped).

Entry ids are `urn:uuid:` derived from the post key, so they stay the same
when the site moves to another public URL; links are absolute on `base`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from xml.etree import ElementTree as ET

from website.content import Article, Listed

ATOM = "http://www.w3.org/2005/Atom"
SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"
FEED_ENTRIES = 20
SITEMAP_MAX = 50_000  # the protocol's limit per file
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def entry_id(key: str) -> str:
    """The Atom id of the post with this key: stable across public URLs."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'selfpub:post:' + key)}"


def atom_feed(title: str, base: str, articles: Sequence[Article], html_of: dict[str, str]) -> bytes:
    """The feed of the newest articles; `html_of[slug]` is each one's rendered body."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}id").text = entry_id(f"site:{base}")
    ET.SubElement(feed, f"{{{ATOM}}}title").text = title
    updated = max((a.published_at for a in articles), default=EPOCH)
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = _iso(updated)
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", type="application/atom+xml", href=f"{base}/feed.atom")
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=f"{base}/")
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = title
    for a in articles:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}id").text = entry_id(a.key)
        ET.SubElement(entry, f"{{{ATOM}}}title").text = a.title
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=f"{base}/a/{a.slug}")
        ET.SubElement(entry, f"{{{ATOM}}}published").text = _iso(a.published_at)
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = _iso(a.published_at)
        if a.description:
            ET.SubElement(entry, f"{{{ATOM}}}summary").text = a.description
        for tag in a.tags:
            ET.SubElement(entry, f"{{{ATOM}}}category", term=tag)
        ET.SubElement(entry, f"{{{ATOM}}}content", type="html").text = html_of.get(a.slug, "")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def sitemap(base: str, listed: Sequence[Listed]) -> bytes:
    """The index and every article page, with its date."""
    ET.register_namespace("", SITEMAP)
    urlset = ET.Element(f"{{{SITEMAP}}}urlset")
    home = ET.SubElement(urlset, f"{{{SITEMAP}}}url")
    ET.SubElement(home, f"{{{SITEMAP}}}loc").text = f"{base}/"
    for a in listed[: SITEMAP_MAX - 1]:
        url = ET.SubElement(urlset, f"{{{SITEMAP}}}url")
        ET.SubElement(url, f"{{{SITEMAP}}}loc").text = f"{base}/a/{a.slug}"
        ET.SubElement(url, f"{{{SITEMAP}}}lastmod").text = _iso(a.published_at)
    return ET.tostring(urlset, encoding="utf-8", xml_declaration=True)
