"""Every file of the bad-input corpus (tests/data/corpus/feeds) through the parse path: no crash, readable items kept, bozo reported."""

from __future__ import annotations

import codecs
import importlib.util
import re
from pathlib import Path

import httpx
import pytest

from agents.dedupe import canonical_url
from agents.feeds import FeedFetcher, parse_feed
from tests.agents.feeds_support import FeedServer, feed, feed_server, research_settings  # noqa: F401
from tests.conftest import DATA

CORPUS = DATA / "corpus" / "feeds"
FILES = sorted(p for p in CORPUS.rglob("*.xml") if p.is_file())
FEED_URL = "http://127.0.0.1:8000/feed.xml"


def header_comment(path: Path) -> str:
    """The feedparser test header (Description / Header / Expect), decoded whatever the file's encoding."""
    raw = path.read_bytes()
    for bom, enc in ((codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF32_LE, "utf-32-le"),
                     (codecs.BOM_UTF16_BE, "utf-16-be"), (codecs.BOM_UTF16_LE, "utf-16-le")):
        if raw.startswith(bom):
            return raw[len(bom):].decode(enc, "replace")
    for enc, probe in (("utf-32-be", b"\0\0\0<"), ("utf-32-le", b"<\0\0\0"), ("utf-16-be", b"\0<"), ("utf-16-le", b"<\0")):
        if raw.startswith(probe):
            return raw.decode(enc, "replace")
    return raw.decode("latin-1")


def http_headers(comment: str) -> dict[str, str]:
    """The HTTP headers the corpus file says it is served with."""
    headers = {}
    for value in re.findall(r"^Header:\s*(.+?)\s*$", comment, re.MULTILINE):
        name, _, val = value.partition(":")
        headers[name.strip()] = val.strip()
    return headers


def expectation(comment: str) -> str:
    m = re.search(r"^Expect:\s*(.+?)\s*$", comment, re.MULTILINE)
    return m.group(1) if m else ""


def missing_optional_module(comment: str) -> bool:
    """True when the file's SkipUnless names a module we do not install (chardet: encoding guessing)."""
    for line in re.findall(r"^SkipUnless:\s*(.+)$", comment, re.MULTILINE):
        for module in re.findall(r"__import__\('([\w.]+)'\)", line):
            if importlib.util.find_spec(module) is None:
                return True
    return False


def test_the_corpus_is_there() -> None:
    assert len(FILES) >= 100


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_corpus_file_parses_without_crashing(path: Path) -> None:
    comment = header_comment(path)
    parsed = parse_feed(path.read_bytes(), feed_url=FEED_URL, headers=http_headers(comment))
    # readable items kept, the rest counted
    assert len(parsed.items) + parsed.dropped == min(parsed.entries_found, 1_000)
    for item in parsed.items:
        assert canonical_url(item.url) == item.url and item.url.startswith(("http://", "https://"))
        assert "<script" not in item.summary.lower() and "<" not in item.title
        assert item.title or item.summary
    # ill-formed input is reported, well-formed input is not
    expect = expectation(comment)
    if expect.startswith("bozo"):
        assert parsed.bozo, f"{path.name}: expected a bozo report ({expect})"
    elif expect.startswith("not bozo"):
        assert parsed.bozo is None, f"{path.name}: unexpected bozo {parsed.bozo}"
    m = re.search(r"encoding == '([^']+)'", expect)
    if m and not missing_optional_module(comment):
        assert (parsed.encoding or "").lower() == m.group(1).lower()


async def test_corpus_served_over_http_never_crashes_a_cycle(feed_server: FeedServer) -> None:
    feeds = []
    for i, path in enumerate(FILES):
        headers = http_headers(header_comment(path))
        ctype = headers.pop("Content-type", headers.pop("Content-Type", "application/xml"))
        feeds.append(feed(feed_server.add_file(f"/c/{i}", path, content_type=ctype, headers=headers)))
    async with httpx.AsyncClient() as client:
        results = await FeedFetcher(client, research_settings(concurrency=8)).fetch_all(feeds)
    assert len(results) == len(FILES)
    assert all(r.report.status == "ok" for r in results), [(r.report.feed_url, r.report.status, r.report.error) for r in results if r.report.status != "ok"]
    assert sum(1 for r in results if r.report.bozo) >= 10
