"""Every route of the agent's site over real HTTP: pages, JSON, HEAD, 405, 404, and no draft ever shown."""

from __future__ import annotations

import httpx
import pytest

from kernel.money import format_credits
from tests.website.conftest import (
    ARTICLES,
    HELD_TITLE,
    PUBLIC_URL,
    REJECTED_TITLE,
    UNDELIVERED_TITLE,
    PublishedState,
    base_url,
)
from website import PAID_PATHS, x402_pattern

RUST, SQLITE = ARTICLES[0][0], ARTICLES[1][0]


@pytest.fixture
async def client(site) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=base_url(site), timeout=10) as c:
        yield c


async def test_index_lists_published_articles_newest_first_with_their_cost(client, published_state: PublishedState):
    resp = await client.get("/")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    page = resp.text
    rust, sqlite = (page.index(f'href="/a/{published_state.slugs[t]}"') for t in (RUST, SQLITE))
    assert sqlite < rust  # published later, listed first
    assert "SQLite adds JSONB &lt;fast&gt; &amp; small" in page  # titles escaped
    assert f"{format_credits(2_000_001)} credits" in page
    assert "Agent&#x27;s &lt;notes&gt;" in page
    assert "default-src 'none'" in resp.headers["content-security-policy"]


async def test_article_page_renders_markdown_safely_with_sources_and_cost(client, published_state: PublishedState):
    slug = published_state.slugs[RUST]
    resp = await client.get(f"/a/{slug}")
    assert resp.status_code == 200
    page = resp.text
    assert "<h1>Rust 1.80 ships LazyCell</h1>" in page
    source = ARTICLES[0][1]
    assert f'<a href="{source}" rel="nofollow noopener noreferrer">the announcement</a>' in page
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in page and "<script>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert 'href="https://evil.example' not in page and 'src="https://evil.example' not in page
    assert "evil</a>" not in page and "evil" in page  # the refused link keeps its text, loses its href
    assert 'href="javascript' not in page.lower()
    assert f"<strong>{format_credits(12_345)} credits</strong>" in page
    assert f'<link rel="canonical" href="{PUBLIC_URL}/a/{slug}">' in page
    sources = page.split("<h2>Sources</h2>")[1]
    assert f'href="{source}"' in sources


async def test_markdown_route_gives_the_whole_markdown_and_sources_as_json(client, published_state: PublishedState):
    slug = published_state.slugs[SQLITE]
    resp = await client.get(f"/a/{slug}.md")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    doc = resp.json()
    assert doc["slug"] == slug and doc["url"] == f"{PUBLIC_URL}/a/{slug}"
    assert doc["markdown"].startswith("# SQLite adds JSONB <fast> & small\n") and "<script>" in doc["markdown"]
    assert doc["sources"] == [ARTICLES[1][1]]
    assert doc["cost"] == {"ucr": 2_000_001, "credits": format_credits(2_000_001)}


async def test_brief_route_gives_the_research_brief(client, published_state: PublishedState):
    slug = published_state.slugs[RUST]
    resp = await client.get(f"/api/briefs/{slug}")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["topic"] == "topic 0" and doc["angle"] == "what changed"
    assert doc["key_points"] == [{"claim": "claim 0", "source_url": ARTICLES[0][1]}]
    assert doc["items"][0]["url"] == ARTICLES[0][1]


async def test_head_answers_like_get_without_a_body(client, published_state: PublishedState):
    slug = published_state.slugs[RUST]
    for path in ("/", f"/a/{slug}", f"/a/{slug}.md", f"/api/briefs/{slug}", "/feed.atom", "/sitemap.xml"):
        got, head = await client.get(path), await client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-length"] == got.headers["content-length"], path


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"])
async def test_other_methods_are_405(client, published_state: PublishedState, method: str):
    for path in ("/", f"/a/{published_state.slugs[RUST]}", "/nowhere"):
        resp = await client.request(method, path, content=b"x" * 10)
        assert resp.status_code == 405 and resp.headers["allow"] == "GET, HEAD"
        assert resp.content == b"method not allowed\n"


async def test_unknown_paths_and_slugs_are_the_same_tiny_404(client):
    for path in ("/nowhere", "/a/no-such-slug-0000", "/a/no-such-slug-0000.md", "/api/briefs/none",
                 "/a/", "/a/UPPER", "/api/briefs/", "/admin", "/a/x/", "/feed.atom/x"):
        resp = await client.get(path)
        assert (resp.status_code, resp.content) == (404, b"not found\n"), path


async def test_no_held_rejected_or_undelivered_draft_is_ever_served(client, published_state: PublishedState):
    hidden = (HELD_TITLE, REJECTED_TITLE, UNDELIVERED_TITLE)
    paths = ["/", "/feed.atom", "/sitemap.xml"]
    for title in (HELD_TITLE, UNDELIVERED_TITLE):  # their slugs exist, their pages must not
        slug = published_state.slugs[title]
        paths += [f"/a/{slug}", f"/a/{slug}.md", f"/api/briefs/{slug}"]
    for path in paths:
        resp = await client.get(path)
        for title in hidden:
            assert title not in resp.text, (path, title)
            assert title.lower().replace(" ", "-") not in resp.text, (path, title)
        if path.startswith(("/a/", "/api/")):
            assert resp.status_code == 404


def test_paid_paths_are_the_machine_routes_in_x402_syntax():
    assert PAID_PATHS == {"article": "/a/{slug}.md", "brief": "/api/briefs/{slug}"}
    assert [x402_pattern(p) for p in PAID_PATHS.values()] == ["/a/[slug].md", "/api/briefs/[slug]"]
