"""Bluesky rich text: UTF-8 byte offsets, grapheme counting, thread splitting."""

from __future__ import annotations

from publishers.facets import Link, byte_offset, detect_facets, grapheme_length, shorten_url, split_thread
from publishers.urls import LinkPolicy

DEVTO = LinkPolicy(platforms=("https://dev.to",))


def _span(text: str, facet: dict) -> str:
    raw = text.encode("utf-8")
    return raw[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode("utf-8")


def test_link_facet_offsets_are_utf8_bytes_after_emoji_cjk_and_combining_marks():
    text = "👩‍👩‍👧 日本語 cafe\u0301 see https://dev.to/me/post-1. #Rust"
    facets = detect_facets(text, policy=DEVTO)
    link, tag = facets
    assert _span(text, link) == "https://dev.to/me/post-1"
    assert link["features"][0] == {"$type": "app.bsky.richtext.facet#link", "uri": "https://dev.to/me/post-1"}
    assert link["index"]["byteStart"] == len("👩‍👩‍👧 日本語 cafe\u0301 see ".encode())
    assert link["index"]["byteStart"] != text.index("https")  # code points would be wrong
    assert _span(text, tag) == "#Rust"
    assert tag["features"][0]["tag"] == "Rust"


def test_display_text_link_points_to_the_full_uri():
    uri = "https://dev.to/someone/a-very-long-article-slug-that-goes-on-and-on-1a2b"
    shown = shorten_url(uri)
    text = f"Read this ✨\n\n{shown}"
    (facet,) = detect_facets(text, [Link(shown, uri)], policy=DEVTO)
    assert _span(text, facet) == shown
    assert facet["features"][0]["uri"] == uri
    assert shown.endswith("…") and grapheme_length(shown) <= 32


def test_hashtags_skip_numbers_and_trailing_punctuation():
    text = "#1 is not a tag, #python, is; #日本語!"
    tags = [f["features"][0]["tag"] for f in detect_facets(text)]
    assert tags == ["python", "日本語"]


def test_length_is_counted_in_graphemes():
    assert grapheme_length("👩‍👩‍👧") == 1
    assert grapheme_length("e\u0301") == 1
    assert len("👩‍👩‍👧") == 5
    assert byte_offset("日本", 1) == 3


def test_short_text_is_one_post():
    assert split_thread("hello world") == ["hello world"]


def test_long_text_becomes_a_numbered_thread_within_300_graphemes():
    text = " ".join(["👩‍👩‍👧 word日本"] * 120)
    parts = split_thread(text)
    assert len(parts) > 1
    assert all(grapheme_length(p) <= 300 for p in parts)
    assert parts[0].endswith(f" 1/{len(parts)}") and parts[-1].endswith(f" {len(parts)}/{len(parts)}")
    rebuilt = " ".join(p.rsplit(" ", 1)[0] for p in parts)
    assert rebuilt == text


def test_room_is_kept_in_the_first_post_for_a_link():
    text = " ".join(["abcdefghi"] * 40)  # 399 graphemes
    parts = split_thread(text, reserve_first=40)
    assert grapheme_length(parts[0]) + 40 <= 300


async def test_scenario_13_bluesky_facet_foreign(tmp_path):
    import httpx
    from pydantic import SecretStr

    from publishers.bluesky import BlueskyPublisher
    from publishers.protocol import Post
    from tests.publishers.atproto_fake import FakeAtproto

    article = "https://dev.to/me/post-1"
    client = FakeAtproto()
    pub = BlueskyPublisher(client, handle="me.test", password=SecretStr("pw"), session_path=tmp_path / "s",
                           http=httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404))))
    text = "New post https://evil.example/x (also evil.com/y and HTTPS://dev.to@evil.com/z) #rust"
    await pub.publish(Post(key="k", title="t", body_markdown="b", bsky_text=text, link_url=article))
    (record,) = client.records
    uris = [f["features"][0]["uri"] for f in record["facets"] if "uri" in f["features"][0]]
    assert uris == [article]  # the appended article link only; the foreign links stay plain text
    assert [f["features"][0]["tag"] for f in record["facets"] if "tag" in f["features"][0]] == ["rust"]
    assert record["embed"]["external"]["uri"] == article


def test_only_allowed_links_become_facets():
    policy = LinkPolicy(sources=("https://dev.to/me/post-1",), platforms=("https://bsky.app",))
    text = "a https://dev.to/me/post-1, b bsky.app/profile/x c https://dev.to/other d evil.com e Node.js"
    uris = [f["features"][0]["uri"] for f in detect_facets(text, policy=policy)]
    assert uris == ["https://dev.to/me/post-1", "https://bsky.app/profile/x"]
    refused = Link("dev.to/x", "https://evil.example/x")
    assert detect_facets("see dev.to/x", [refused], policy=LinkPolicy(platforms=("https://dev.to",))) == []
