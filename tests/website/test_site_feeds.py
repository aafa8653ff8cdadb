"""The Atom feed parses as Atom (feedparser, strict) and the sitemap as sitemaps.org XML, over real HTTP."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import feedparser
import httpx

from tests.website.conftest import ARTICLES, HELD_TITLE, PUBLIC_URL, PublishedState, base_url
from website.feeds import ATOM, SITEMAP, entry_id


async def test_atom_feed_is_valid_and_lists_the_articles_newest_first(site, published_state: PublishedState):
    async with httpx.AsyncClient(base_url=base_url(site)) as client:
        resp = await client.get("/feed.atom")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/atom+xml"
    feed = feedparser.parse(resp.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "Agent's <notes>"
    assert [e.title for e in feed.entries] == [ARTICLES[1][0], ARTICLES[0][0]]  # newest first
    rust = feed.entries[1]
    slug = published_state.slugs[ARTICLES[0][0]]
    assert rust.link == f"{PUBLIC_URL}/a/{slug}"
    assert rust.id == entry_id(f"selfpub-{published_state.task_ids[ARTICLES[0][0]]}")
    assert "the announcement" in rust.content[0].value and "<script>" not in rust.content[0].value
    assert rust.published_parsed is not None and rust.summary == f"About {ARTICLES[0][0]}"
    assert {t.term for t in rust.tags} == {"rust", "sqlite"}
    assert HELD_TITLE not in resp.text
    root = ET.fromstring(resp.content)  # well-formed, in the Atom namespace
    assert root.tag == f"{{{ATOM}}}feed" and root.find(f"{{{ATOM}}}updated") is not None


async def test_sitemap_lists_the_index_and_every_article(site, published_state: PublishedState):
    async with httpx.AsyncClient(base_url=base_url(site)) as client:
        resp = await client.get("/sitemap.xml")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/xml"
    root = ET.fromstring(resp.content)
    assert root.tag == f"{{{SITEMAP}}}urlset"
    locs = [u.findtext(f"{{{SITEMAP}}}loc") for u in root.findall(f"{{{SITEMAP}}}url")]
    assert locs == [f"{PUBLIC_URL}/", *(f"{PUBLIC_URL}/a/{published_state.slugs[t]}" for t in (ARTICLES[1][0], ARTICLES[0][0]))]
    assert all(u.findtext(f"{{{SITEMAP}}}lastmod", "").endswith("Z") for u in root.findall(f"{{{SITEMAP}}}url")[1:])


async def test_without_a_public_url_links_use_the_address_asked(tmp_path):
    from daemon.site import build_site
    from tests.website.conftest import make_state

    state = await make_state(tmp_path, public_url=None)
    server = build_site(state.settings, state.engine)
    await server.start()
    url = base_url(server)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            feed = feedparser.parse((await client.get("/feed.atom")).content)
            page = (await client.get("/a/" + state.slugs[ARTICLES[0][0]])).text
    finally:
        await server.stop()
        state.engine.dispose()
    assert not feed.bozo and feed.entries[0].link.startswith(url + "/a/")
    assert f'<link rel="canonical" href="{url}/a/' in page
