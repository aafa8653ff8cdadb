"""Parsing feed bodies: text only, http(s) links only, dates checked, caps held, bozo reported."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from agents.feeds import MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, html_to_text, parse_feed
from agents.sample import sample_feed_bytes

FEED_URL = "http://127.0.0.1:8000/feed.xml"


def rss_items(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def test_html_is_stripped_to_text_without_scripts_or_styles() -> None:
    html = '<p>Hello <b>world</b></p><script>alert("x")</script><style>p{color:red}</style><p>bye &amp; done</p>'
    assert html_to_text(html, 1000) == "Hello world bye & done"


def test_item_text_has_no_markup_and_is_capped() -> None:
    body = rss_items(
        "<item><title>&lt;b&gt;Bold&lt;/b&gt; " + "t" * 1000 + "</title><link>http://127.0.0.1/x</link>"
        "<description>&lt;script&gt;steal()&lt;/script&gt;&lt;p&gt;" + "word " * 5000 + "&lt;/p&gt;</description></item>"
    )
    (item,) = parse_feed(body, feed_url=FEED_URL).items
    assert item.title.startswith("Bold ") and len(item.title) <= MAX_TITLE_CHARS
    assert "<" not in item.summary and "steal" not in item.summary
    assert len(item.summary) <= MAX_SUMMARY_CHARS


def test_links_with_non_http_schemes_are_dropped() -> None:
    body = rss_items(
        "<item><title>JS</title><link>javascript:alert(1)</link><description>a</description></item>",
        "<item><title>Data</title><link>data:text/html,hi</link><description>b</description></item>",
        "<item><title>File</title><link>file:///etc/passwd</link><description>c</description></item>",
        "<item><title>Good</title><link>https://127.0.0.1/good?utm_source=rss#top</link><description>d</description></item>",
    )
    parsed = parse_feed(body, feed_url=FEED_URL)
    assert [i.url for i in parsed.items] == ["https://127.0.0.1/good"]
    assert parsed.dropped == 3 and parsed.entries_found == 4


def test_relative_links_resolve_against_the_feed_url() -> None:
    body = rss_items("<item><title>Rel</title><link>/articles/x.html</link><description>d</description></item>")
    assert parse_feed(body, feed_url=FEED_URL).items[0].url == "http://127.0.0.1:8000/articles/x.html"


def test_invalid_and_absurd_dates_become_none() -> None:
    body = rss_items(
        "<item><title>A</title><link>http://127.0.0.1/a</link><pubDate>not a date</pubDate></item>",
        "<item><title>B</title><link>http://127.0.0.1/b</link><pubDate>Mon, 99 Foo 2024 99:99:99 +0000</pubDate></item>",
        "<item><title>C</title><link>http://127.0.0.1/c</link><pubDate>Sat, 01 Jan 1circle 00:00:00 GMT</pubDate></item>",
        "<item><title>D</title><link>http://127.0.0.1/d</link><pubDate>Fri, 01 Jan 9999 00:00:00 GMT</pubDate></item>",
        "<item><title>E</title><link>http://127.0.0.1/e</link><pubDate>Tue, 10 Jun 2025 12:30:00 +0200</pubDate></item>",
    )
    dates = {i.title: i.published for i in parse_feed(body, feed_url=FEED_URL).items}
    assert dates["A"] is None and dates["B"] is None and dates["C"] is None and dates["D"] is None
    assert dates["E"] == datetime(2025, 6, 10, 10, 30, tzinfo=timezone.utc)


def test_bozo_feed_keeps_readable_items_and_reports_why() -> None:
    body = rss_items(
        "<item><title>Fine</title><link>http://127.0.0.1/fine</link><description>ok &amp; good</description></item>",
        "<item><title>Broken &bogus; entity</title><link>http://127.0.0.1/broken</link><description>still <b>readable</description></item>",
    )
    parsed = parse_feed(body, feed_url=FEED_URL)
    assert parsed.bozo and ":" in parsed.bozo
    assert "http://127.0.0.1/fine" in [i.url for i in parsed.items]


def test_items_without_text_are_dropped() -> None:
    body = rss_items("<item><link>http://127.0.0.1/empty</link></item>")
    parsed = parse_feed(body, feed_url=FEED_URL)
    assert parsed.items == [] and parsed.dropped == 1


def test_a_body_that_names_a_local_file_is_parsed_as_data_not_opened(tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_bytes(rss_items("<item><title>Leaked</title><link>http://127.0.0.1/leak</link></item>"))
    parsed = parse_feed(str(secret).encode(), feed_url=FEED_URL)
    assert parsed.items == []


def test_items_carry_feed_tags_and_category_terms() -> None:
    body = rss_items(
        "<item><title>T</title><link>http://127.0.0.1/t</link><category>Web Assembly!</category><description>x</description></item>"
    )
    (item,) = parse_feed(body, feed_url=FEED_URL, tags=("tech",), feed_name="Mine").items
    assert item.tags == ("tech", "webassembly") and item.feed_name == "Mine" and item.feed_url == FEED_URL


def test_sample_feed_has_thirty_local_items_and_follows_the_server_base() -> None:
    parsed = parse_feed(sample_feed_bytes("http://127.0.0.1:8788"), feed_url="http://127.0.0.1:8788/feed.xml")
    assert parsed.bozo is None and len(parsed.items) == 30
    assert all(i.url.startswith("http://127.0.0.1:8788/articles/") and "utm_" not in i.url for i in parsed.items)
    assert all(i.published is not None and i.summary for i in parsed.items)
