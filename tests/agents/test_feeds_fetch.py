"""Feed fetching over real sockets: conditional GET, size cap, redirects, timeouts, concurrency, faults."""

from __future__ import annotations

import time

import httpx
import pytest

from agents.feeds import FeedFetcher, fetch_body
from agents.research_store import ResearchStore
from kernel.db import make_engine
from tests.agents.feeds_support import FeedServer, feed, feed_server, research_settings, rss, unchecked_feed  # noqa: F401

ITEMS = [
    ("SQLite adds JSONB", "http://127.0.0.1/a/1", "Binary JSON in SQLite."),
    ("Rust 2024 edition", "http://127.0.0.1/a/2", "Async closures are stable."),
]


@pytest.fixture
def store(sqlite_url: str) -> ResearchStore:
    s = ResearchStore(make_engine(sqlite_url))
    s.migrate()
    return s


async def test_second_fetch_sends_if_none_match_and_304_yields_no_items(feed_server: FeedServer, store: ResearchStore) -> None:
    url = feed_server.add("/feed.xml", rss(*ITEMS), etag='"v1"')
    async with httpx.AsyncClient() as client:
        fetcher = FeedFetcher(client, research_settings(), store)
        first = await fetcher.fetch(feed(url))
        second = await fetcher.fetch(feed(url))
    assert first.report.status == "ok" and len(first.items) == 2
    reqs = feed_server.requests_to("/feed.xml")
    assert "if-none-match" not in reqs[0].headers
    assert reqs[1].headers["if-none-match"] == '"v1"'
    assert second.report.status == "not_modified" and second.report.http_status == 304
    assert second.items == []
    assert store.feed_state(url).etag == '"v1"'


async def test_last_modified_is_sent_back_as_if_modified_since(feed_server: FeedServer, store: ResearchStore) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    url = feed_server.add("/lm.xml", rss(*ITEMS), last_modified=stamp)
    async with httpx.AsyncClient() as client:
        fetcher = FeedFetcher(client, research_settings(), store)
        await fetcher.fetch(feed(url))
        again = await fetcher.fetch(feed(url))
    assert feed_server.requests_to("/lm.xml")[1].headers["if-modified-since"] == stamp
    assert again.report.status == "not_modified" and again.items == []


async def test_validators_survive_a_new_store_on_the_same_database(feed_server: FeedServer, sqlite_url: str) -> None:
    url = feed_server.add("/feed.xml", rss(*ITEMS), etag='"v7"')
    first_store = ResearchStore(make_engine(sqlite_url))
    first_store.migrate()
    async with httpx.AsyncClient() as client:
        await FeedFetcher(client, research_settings(), first_store).fetch(feed(url))
        restarted = ResearchStore(make_engine(sqlite_url))
        result = await FeedFetcher(client, research_settings(), restarted).fetch(feed(url))
    assert result.report.status == "not_modified"


async def test_body_is_cut_at_max_feed_bytes(feed_server: FeedServer) -> None:
    url = feed_server.add("/huge", stream_bytes=50_000_000)
    async with httpx.AsyncClient() as client:
        got = await fetch_body(client, url, max_bytes=100_000, max_redirects=2, timeout=5)
    assert got.truncated and len(got.body) == 100_000
    assert feed_server.stream_sent.get("/huge", 0) < 50_000_000  # we hung up long before the end


async def test_truncated_feed_keeps_the_items_before_the_cap(feed_server: FeedServer) -> None:
    many = [(f"Story {i}", f"http://127.0.0.1/s/{i}", "x" * 200) for i in range(400)]
    url = feed_server.add("/big.xml", rss(*many))
    async with httpx.AsyncClient() as client:
        result = await FeedFetcher(client, research_settings(max_feed_bytes=20_000)).fetch(feed(url))
    assert result.report.status == "truncated" and "20000" in result.report.error
    assert 0 < len(result.items) < 400
    assert result.report.bytes_read == 20_000


async def test_redirects_are_followed_up_to_max_redirects(feed_server: FeedServer) -> None:
    feed_server.add("/final.xml", rss(*ITEMS))
    feed_server.add("/r2", location="/final.xml", status=301)
    feed_server.add("/r1", location=feed_server.url("/r2"), status=302)
    async with httpx.AsyncClient() as client:
        ok = await FeedFetcher(client, research_settings(max_redirects=2)).fetch(feed(feed_server.url("/r1")))
        too_many = await FeedFetcher(client, research_settings(max_redirects=1)).fetch(feed(feed_server.url("/r1")))
    assert ok.report.status == "ok" and len(ok.items) == 2
    assert too_many.report.status == "too_many_redirects" and too_many.items == []


async def test_redirect_loop_ends_as_a_report(feed_server: FeedServer) -> None:
    feed_server.add("/loop", location="/loop")
    async with httpx.AsyncClient() as client:
        result = await FeedFetcher(client, research_settings(max_redirects=5)).fetch(feed(feed_server.url("/loop")))
    assert result.report.status == "too_many_redirects"
    assert len(feed_server.requests_to("/loop")) == 6


async def test_redirect_to_a_non_http_scheme_is_refused(feed_server: FeedServer) -> None:
    feed_server.add("/to-file", location="file:///etc/passwd")
    async with httpx.AsyncClient() as client:
        result = await FeedFetcher(client, research_settings()).fetch(feed(feed_server.url("/to-file")))
    assert result.report.status == "bad_url" and result.items == []


async def test_slow_feed_times_out_without_stalling_the_others(feed_server: FeedServer) -> None:
    slow = feed_server.add("/slow", rss(*ITEMS), delay=3)
    fast = feed_server.add("/fast", rss(*ITEMS))
    started = time.monotonic()
    async with httpx.AsyncClient() as client:
        results = await FeedFetcher(client, research_settings(fetch_timeout_seconds=1)).fetch_all([feed(slow), feed(fast)])
    assert time.monotonic() - started < 2.5
    assert results[0].report.status == "timeout" and results[0].items == []
    assert results[1].report.status == "ok" and len(results[1].items) == 2


async def test_no_more_than_concurrency_feeds_in_flight(feed_server: FeedServer) -> None:
    urls = [feed_server.add(f"/f{i}", rss(*ITEMS), delay=0.2) for i in range(6)]
    async with httpx.AsyncClient() as client:
        results = await FeedFetcher(client, research_settings(concurrency=2)).fetch_all([feed(u) for u in urls])
    assert all(r.report.status == "ok" for r in results)
    assert feed_server.max_in_flight == 2


async def test_http_errors_and_bad_urls_are_reported_not_raised(feed_server: FeedServer, store: ResearchStore) -> None:
    gone = feed_server.add("/gone", "nope", status=410)
    async with httpx.AsyncClient() as client:
        results = await FeedFetcher(client, research_settings(), store).fetch_all(
            [feed(gone), unchecked_feed("ftp://127.0.0.1/feed"), feed(feed_server.url("/missing"))]
        )
    assert [(r.report.status, r.report.http_status) for r in results] == [
        ("http_error", 410), ("bad_url", None), ("http_error", 404)
    ]
    assert store.feed_state(gone).last_status == 410 and store.feed_state(gone).last_outcome == "http_error"


async def test_connection_refused_is_a_fetch_error() -> None:
    async with httpx.AsyncClient() as client:
        # port 9 (discard) on loopback: nothing listens there in the test environment
        result = await FeedFetcher(client, research_settings()).fetch(feed("http://127.0.0.1:9/feed"))
    assert result.report.status == "fetch_error" and "ConnectError" in result.report.error


@pytest.mark.parametrize(
    ("exc", "status"),
    [(httpx.ReadTimeout("slow"), "timeout"), (httpx.RemoteProtocolError("garbage"), "fetch_error"), (httpx.ReadError("reset"), "fetch_error")],
)
async def test_transport_faults_become_reports(exc: Exception, status: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await FeedFetcher(client, research_settings()).fetch(feed("http://127.0.0.1/feed"))
    assert result.report.status == status and result.items == []


async def test_ten_megabyte_item_holds_the_limits(feed_server: FeedServer) -> None:
    huge = "<p>" + ("word " * 2_100_000) + "</p>"
    body = rss(("Huge", "http://127.0.0.1/huge", huge.replace("<", "&lt;")), ("Small", "http://127.0.0.1/small", "fine"))
    assert len(body) > 10_000_000
    url = feed_server.add("/ten-mb.xml", body)
    async with httpx.AsyncClient() as client:
        result = await FeedFetcher(client, research_settings(max_feed_bytes=12_000_000)).fetch(feed(url))
    assert result.report.status == "ok"
    big = next(i for i in result.items if i.title == "Huge")
    assert len(big.summary) <= 4_000 and len(big.content) <= 20_000


async def test_ten_thousand_item_feed_finishes_within_the_item_cap(feed_server: FeedServer) -> None:
    many = [(f"Item {i}", f"http://127.0.0.1/i/{i}", f"Summary {i}") for i in range(10_000)]
    url = feed_server.add("/10k.xml", rss(*many))
    started = time.monotonic()
    async with httpx.AsyncClient() as client:
        result = await FeedFetcher(client, research_settings()).fetch(feed(url))
    assert result.report.status == "ok"
    assert len(result.items) == 1_000  # MAX_ITEMS_PER_FEED
    assert time.monotonic() - started < 60
