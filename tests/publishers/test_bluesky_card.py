"""Bluesky link card: untrusted page text is cleaned, og:image comes only from the article's own host."""

from __future__ import annotations

import io

import httpx
from PIL import Image
from pydantic import SecretStr

from publishers.bluesky import BlueskyPublisher
from publishers.protocol import Post
from tests.publishers.atproto_fake import FakeAtproto

ARTICLE = "https://dev.to/someone/rust-async-4k2j"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()


class Site:
    """Routes GETs by host and path; remembers every URL requested."""

    def __init__(self, page: str, routes: dict[str, httpx.Response] | None = None) -> None:
        self.page = page
        self.routes = routes or {}
        self.requested: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requested.append(str(request.url))
        key = f"{request.url.host}{request.url.path}"
        if key in self.routes:
            return self.routes[key]
        if str(request.url) == ARTICLE:
            return httpx.Response(200, text=self.page, headers={"content-type": "text/html"})
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})


def _page(title: str = "Rust async", description: str = "Futures.", image: str | None = None) -> str:
    meta = f'<meta property="og:title" content="{title}"><meta property="og:description" content="{description}">'
    if image is not None:
        meta += f'<meta property="og:image" content="{image}">'
    return f"<html><head>{meta}</head><body>hi</body></html>"


def _publisher(site: Site, tmp_path) -> tuple[BlueskyPublisher, FakeAtproto]:
    client = FakeAtproto()
    pub = BlueskyPublisher(client, handle="me.test", password=SecretStr("pw"), session_path=tmp_path / "s",
                           http=httpx.AsyncClient(transport=httpx.MockTransport(site)))
    return pub, client


def _post(text: str = "Rust async got simpler #rust") -> Post:
    return Post(key="k1", title="Rust async", body_markdown="b", bsky_text=text, link_url=ARTICLE)


async def test_scenario_13_link_card_image_other_host(tmp_path):
    for image in ("https://tracker.example/pixel.png", "//tracker.example/p.png", "/\\tracker.example/p.png",
                  "https:\\\\tracker.example\\p.png", "https://dev.to@tracker.example/p.png", "/img/redirect.png"):
        site = Site(_page(image=image), routes={
            "dev.to/img/redirect.png": httpx.Response(302, headers={"location": "https://tracker.example/p.png"}),
        })
        pub, client = _publisher(site, tmp_path)
        await pub.publish(_post())
        (record,) = client.records
        assert "thumb" not in record["embed"]["external"], image
        assert client.blobs == []
        assert not [u for u in site.requested if "tracker.example" in u], (image, site.requested)


async def test_og_image_on_the_article_host_becomes_the_thumbnail(tmp_path):
    site = Site(_page(image="/img/cover.png"), routes={
        "dev.to/img/cover.png": httpx.Response(301, headers={"location": "/img/cover-2.png"}),
    })
    pub, client = _publisher(site, tmp_path)
    await pub.publish(_post())
    (record,) = client.records
    assert record["embed"]["external"]["thumb"]["size"] == len(PNG)
    assert site.requested == [ARTICLE, "https://dev.to/img/cover.png", "https://dev.to/img/cover-2.png"]


async def test_a_page_that_redirects_off_host_gives_no_fetched_text(tmp_path):
    site = Site("", routes={"dev.to/someone/rust-async-4k2j": httpx.Response(302, headers={"location": "https://evil.example/"})})
    pub, client = _publisher(site, tmp_path)
    await pub.publish(_post())
    ext = client.records[0]["embed"]["external"]
    assert ext["title"] == "Rust async" and "thumb" not in ext
    assert site.requested == [ARTICLE]


async def test_scenario_13_link_card_text_untrusted(tmp_path):
    title = "Rust\u202e\u0000 async\u200b https://evil.example/x now\nsee www.evil.example &amp; evil.example/y " + "long " * 200
    description = "Click\tjavascript:alert(1) or ht\u200btps://evil.example/z" + "x " * 2000
    pub, client = _publisher(Site(_page(title, description)), tmp_path)
    await pub.publish(_post())
    ext = client.records[0]["embed"]["external"]
    for text, limit in ((ext["title"], 300), (ext["description"], 1000)):  # CARD_TITLE_MAX, CARD_DESCRIPTION_MAX
        assert "evil" not in text and "javascript" not in text and "://" not in text, text
        assert not any(ord(c) < 0x20 or c in "\u202e\u200b\u0000" for c in text), text
        assert len(text) <= limit and "  " not in text
    assert ext["title"].startswith("Rust async now see & long long") and ext["title"].endswith("…")


def test_card_text_keeps_ordinary_text_and_emoji():
    from publishers.bluesky import card_text
    from publishers.urls import text_links

    assert card_text("  Rust 2026:\n faster   builds 👩‍💻 ", 300) == "Rust 2026: faster builds 👩‍💻"
    assert card_text("a" * 10, 5) == "aaaa…"
    assert text_links(card_text("x https://a.example/b y evil.example z", 300)) == []
