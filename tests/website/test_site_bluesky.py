"""The real Bluesky adapter links its post to the site copy, and its link card is read from the site's own page."""

from __future__ import annotations

import socket

import httpx
from pydantic import SecretStr

from daemon.site import build_site
from publishers.bluesky import BlueskyPublisher
from publishers.protocol import Post
from tests.publishers.atproto_fake import FakeAtproto
from tests.website.conftest import ARTICLES, make_state


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_bluesky_post_links_to_the_site_copy_and_its_card_is_the_site_page(tmp_path):
    port = _free_port()
    public = f"http://127.0.0.1:{port}"
    state = await make_state(tmp_path, public_url=public, site={"port": port})
    server = build_site(state.settings, state.engine)
    await server.start()
    title = ARTICLES[0][0]
    link = f"{public}/a/{state.slugs[title]}"
    client = FakeAtproto()
    try:
        async with httpx.AsyncClient() as http:
            bluesky = BlueskyPublisher(client, handle="me.test", password=SecretStr("pw"),
                                       session_path=tmp_path / "session", http=http)
            await bluesky.publish(Post(key="selfpub-card", title="not the page's title", body_markdown="b",
                                       bsky_text="Rust got a lazy cell", link_url=link, canonical_url=link))
    finally:
        await server.stop()
        state.engine.dispose()
    (record,) = client.records
    external = record["embed"]["external"]
    assert external["uri"] == link
    assert external["title"] == title and external["description"] == f"About {title}"  # og: tags of the site page
    uris = [f["uri"] for facet in record.get("facets", []) for f in facet["features"] if "uri" in f]
    assert uris == [link]
