"""New items only: seen URLs and content hashes and covered near-duplicates are skipped, also after a restart."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import inspect

from agents.feeds import parse_feed
from agents.messages import FeedItem
from agents.research import ResearchAgent
from agents.research_store import VERSION_TABLE, ResearchStore
from kernel.db import make_engine
from tests.agents.feeds_support import FeedServer, feed, feed_server, research_settings, rss, unchecked_feed  # noqa: F401

BACKUPS = (
    "PostgreSQL 17 ships incremental backups",
    "http://127.0.0.1/pg17",
    "pg_basebackup can now take incremental backups that only copy blocks changed since a previous backup, "
    "using a WAL summarizer process, and pg_combinebackup reconstructs a full data directory from them.",
)
BACKUPS_SYNDICATED = (
    "PostgreSQL 17 ships incremental backups",
    "http://127.0.0.1/mirror/pg17-copy",
    "pg_basebackup can now take incremental backups that only copy blocks changed since a previous backup, "
    "using a WAL summarizer process, and pg_combinebackup reconstructs a full data directory from those.",
)
RUST = ("Rust 2024 edition is stable", "http://127.0.0.1/rust", "Rust 1.85 stabilised the 2024 edition with async closures.")
WASM = ("WASI 0.2 arrives", "http://127.0.0.1/wasi", "Components link through typed WIT interfaces in Wasmtime.")


def items(*entries: tuple[str, str, str]) -> list[FeedItem]:
    return parse_feed(rss(*entries).encode(), feed_url="http://127.0.0.1/feed.xml").items


def agent_on(url: str, **settings: object) -> ResearchAgent:
    store = ResearchStore(make_engine(url))
    store.migrate()
    return ResearchAgent(llm=None, store=store, settings=research_settings(**settings))  # type: ignore[arg-type]


def test_migration_creates_research_tables_with_own_version_table(engine) -> None:  # noqa: ANN001
    ResearchStore(engine).migrate()
    ResearchStore(engine).migrate()  # idempotent
    tables = set(inspect(engine).get_table_names())
    assert {"research_feed_state", "research_seen_item", VERSION_TABLE} <= tables


def test_seen_items_are_not_new_again_after_a_restart(db_url: str) -> None:
    first = agent_on(db_url)
    assert len(first.new_items(items(BACKUPS, RUST))) == 2
    restarted = agent_on(db_url)  # a new store object on the same database
    assert restarted.new_items(items(BACKUPS, RUST, WASM)) == items(WASM)


def test_same_story_under_a_tracking_url_or_new_address_is_not_new(db_url: str) -> None:
    agent = agent_on(db_url)
    agent.new_items(items(RUST))
    tracked = (RUST[0], RUST[1] + "?utm_source=mastodon#comments", RUST[2])
    moved = (RUST[0], "http://127.0.0.1/rust-moved", RUST[2])
    assert agent.new_items(items(tracked)) == []
    assert agent.new_items(items(moved)) == []  # same content hash


def test_near_duplicate_of_a_covered_topic_is_skipped_after_a_restart(db_url: str) -> None:
    agent = agent_on(db_url)
    (pg,) = agent.new_items(items(BACKUPS))
    agent.mark_covered(pg)
    restarted = agent_on(db_url)
    assert restarted.new_items(items(BACKUPS_SYNDICATED, RUST)) == items(RUST)
    assert restarted.is_near_duplicate(items(BACKUPS_SYNDICATED)[0])


def test_near_duplicates_within_one_cycle_keep_only_the_first(sqlite_url: str) -> None:
    agent = agent_on(sqlite_url)
    assert [i.url for i in agent.new_items(items(BACKUPS, BACKUPS_SYNDICATED, RUST))] == [BACKUPS[1], RUST[1]]


def test_uncovered_similar_topic_from_an_earlier_cycle_is_not_a_near_duplicate(sqlite_url: str) -> None:
    agent = agent_on(sqlite_url)
    agent.new_items(items(BACKUPS))  # seen but never written about
    assert [i.url for i in agent.new_items(items(BACKUPS_SYNDICATED))] == [BACKUPS_SYNDICATED[1]]


def test_threshold_setting_decides_what_counts_as_near(sqlite_url: str) -> None:
    strict = agent_on(sqlite_url, near_duplicate_threshold=1.0)
    (pg,) = strict.new_items(items(BACKUPS))
    strict.mark_covered(pg)
    assert len(strict.new_items(items(BACKUPS_SYNDICATED))) == 1


def test_novelty_is_one_minus_the_closest_covered_topic(db_url: str) -> None:
    agent = agent_on(db_url)
    pg, rust, wasm = items(BACKUPS, RUST, WASM)
    assert agent.novelty(pg) == 1.0  # nothing covered yet
    agent.mark_covered(pg)
    assert agent.novelty(pg) == 0.0
    assert agent.novelty(items(BACKUPS_SYNDICATED)[0]) <= 0.2
    assert agent.novelty(wasm) >= 0.8
    assert agent_on(db_url).novelty(pg) == 0.0  # persisted


def test_mark_covered_by_another_worker_is_seen_without_restart(sqlite_url: str) -> None:
    mine, theirs = agent_on(sqlite_url), agent_on(sqlite_url)
    (pg,) = items(BACKUPS)
    assert mine.novelty(pg) == 1.0
    theirs.mark_covered(pg)
    assert mine.novelty(pg) == 0.0


async def test_collect_fetches_feeds_and_reports_new_counts(feed_server: FeedServer, sqlite_url: str) -> None:
    a = feed_server.add("/a.xml", rss(BACKUPS, RUST), etag='"a1"')
    b = feed_server.add("/b.xml", rss(RUST, WASM))
    broken = feed_server.add("/broken.xml", "<rss><channel><item><title>Half", content_type="text/xml")
    store = ResearchStore(make_engine(sqlite_url))
    store.migrate()
    async with httpx.AsyncClient() as client:
        agent = ResearchAgent(llm=None, store=store, settings=research_settings(), client=client)  # type: ignore[arg-type]
        first = await agent.collect([feed(a), feed(b), feed(broken), unchecked_feed("gopher://127.0.0.1/x")])
        second = await agent.collect([feed(a), feed(b)])
    assert sorted(i.url for i in first.items) == sorted([BACKUPS[1], RUST[1], WASM[1]])
    by_url = {r.feed_url: r for r in first.reports}
    assert (by_url[a].items_found, by_url[a].items_new) == (2, 2)
    assert (by_url[b].items_found, by_url[b].items_new) == (2, 1)
    assert by_url[broken].status == "ok" and by_url[broken].bozo
    assert by_url["gopher://127.0.0.1/x"].status == "bad_url"
    assert first.already_seen == 1
    assert second.items == [] and second.reports[0].status == "not_modified"


@pytest.mark.parametrize("threshold", [0.0])
def test_zero_threshold_treats_any_covered_topic_as_near(sqlite_url: str, threshold: float) -> None:
    agent = agent_on(sqlite_url, near_duplicate_threshold=threshold)
    (pg,) = items(BACKUPS)
    agent.mark_covered(pg)
    assert agent.new_items(items(WASM)) == []


def test_items_not_taken_this_cycle_wait_in_the_backlog_across_restarts(db_url: str) -> None:
    first = agent_on(db_url)
    assert len(first.new_items(items(RUST, WASM))) == 2
    first.mark_covered(items(RUST)[0])  # the cycle took only one of them
    restarted = agent_on(db_url)
    assert restarted.new_items(items(RUST, WASM)) == []  # nothing new (as after a 304)
    assert [it.url for it in restarted.backlog()] == [items(WASM)[0].url]
    restarted.mark_covered(items(WASM)[0])
    assert agent_on(db_url).backlog() == []


def test_backlog_drops_near_duplicates_of_covered_topics(db_url: str) -> None:
    agent = agent_on(db_url)
    agent.new_items(items(BACKUPS))
    agent.mark_covered(items(BACKUPS_SYNDICATED)[0])
    assert agent_on(db_url).backlog() == []
