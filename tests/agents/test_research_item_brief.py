"""Short items are briefed without a model (research.llm_brief_min_chars); long ones still go to it."""

from __future__ import annotations

import httpx
import pytest

from agents.messages import Brief, KeyPoint
from agents.research import ResearchAgent, item_brief, sentences
from agents.research_store import ResearchStore
from agents.untrusted import looks_like_injection
from kernel.db import make_engine
from config.settings import ResearchSettings
from tests.agents.feeds_support import FeedServer, feed, feed_server, research_settings, rss  # noqa: F401
from tests.agents.test_research_brief import GOOD, HOSTILE, ScriptedLLM, items

SQLITE = ("SQLite 3.45 adds a binary JSON format", "http://127.0.0.1/news/jsonb",
          "SQLite now stores JSON in a binary representation called JSONB. Functions such as json_extract accept "
          "both text and JSONB! Parsing-heavy queries run several times faster.")


class NoCallLLM:
    """An LLM that must not be called."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        raise AssertionError("the model was called for a short item")


def agent(llm: object, sqlite_url: str, **settings: object) -> ResearchAgent:
    store = ResearchStore(make_engine(sqlite_url))
    store.migrate()
    return ResearchAgent(llm, store, research_settings(**settings))  # type: ignore[arg-type]


def test_the_default_threshold_is_set_and_can_be_turned_off() -> None:
    assert ResearchSettings().llm_brief_min_chars == 1200
    assert ResearchSettings(llm_brief_min_chars=0).llm_brief_min_chars == 0
    with pytest.raises(ValueError):
        ResearchSettings(llm_brief_min_chars=-1)


async def test_a_short_item_is_briefed_from_itself_with_no_call_and_no_cost(sqlite_url: str) -> None:
    llm = NoCallLLM()
    brief = await agent(llm, sqlite_url).brief(items(SQLITE), task_id="t", cycle_id="c")
    assert llm.calls == 0  # no call: nothing reserved, nothing spent
    url = SQLITE[1]
    assert brief == Brief(
        topic=SQLITE[0],
        angle="SQLite now stores JSON in a binary representation called JSONB.",
        key_points=(
            KeyPoint(claim="SQLite now stores JSON in a binary representation called JSONB.", source_url=url),
            KeyPoint(claim="Functions such as json_extract accept both text and JSONB!", source_url=url),
            KeyPoint(claim="Parsing-heavy queries run several times faster.", source_url=url),
        ),
        sources=(url,),
    )


async def test_an_item_at_the_threshold_goes_to_the_model(sqlite_url: str) -> None:
    size = len(items(SQLITE)[0].summary)
    llm = ScriptedLLM({"topic": "JSONB", "angle": "a", "key_points": [], "sources": [SQLITE[1]]})
    brief = await agent(llm, sqlite_url, llm_brief_min_chars=size).brief(items(SQLITE), task_id="t")
    assert len(llm.history) == 1 and brief.topic == "JSONB"
    brief = await agent(NoCallLLM(), sqlite_url, llm_brief_min_chars=size + 1).brief(items(SQLITE), task_id="t")
    assert brief.topic == SQLITE[0]


async def test_a_long_item_goes_to_the_model(sqlite_url: str) -> None:
    long = (SQLITE[0], SQLITE[1], "SQLite stores JSON in binary. " * 60)
    llm = ScriptedLLM({"topic": "SQLite JSONB", "angle": "Faster JSON.",
                       "key_points": [{"claim": "Binary JSON.", "source_url": SQLITE[1]}], "sources": [SQLITE[1]]})
    brief = await agent(llm, sqlite_url).brief(items(long), task_id="t-1", cycle_id="c-1")
    assert [c["role"] for c in llm.history] == ["research"] and llm.history[0]["task_id"] == "t-1"
    assert brief.topic == "SQLite JSONB" and brief.key_points == (KeyPoint(claim="Binary JSON.", source_url=SQLITE[1]),)


async def test_fetched_article_text_counts_towards_the_size(feed_server: FeedServer, sqlite_url: str) -> None:
    page = "<html><body><article>" + "".join(
        f"<p>Paragraph {i} explains how SQLite stores JSON documents in a compact binary form.</p>" for i in range(40)
    ) + "</article></body></html>"
    article = feed_server.add("/article.html", page, content_type="text/html; charset=utf-8")
    llm = ScriptedLLM({"topic": "JSONB", "angle": "", "key_points": [], "sources": [article]})
    store = ResearchStore(make_engine(sqlite_url))
    store.migrate()
    async with httpx.AsyncClient() as client:
        research = ResearchAgent(llm, store, research_settings(fetch_articles=True), client=client)
        await research.brief(items(("SQLite adds JSONB", article, "short")), task_id="t")
    assert len(llm.history) == 1


async def test_a_hostile_short_item_is_sanitised_like_a_model_brief(feed_server: FeedServer, sqlite_url: str) -> None:
    url = feed_server.add("/hostile.xml", rss(HOSTILE, GOOD))
    store = ResearchStore(make_engine(sqlite_url))
    store.migrate()
    llm = NoCallLLM()
    async with httpx.AsyncClient() as client:
        research = ResearchAgent(llm, store, research_settings(), client=client)  # type: ignore[arg-type]
        found = await research.collect([feed(url)])
        hostile = [it for it in found.items if it.url == HOSTILE[1]]
        brief = await research.brief(hostile, task_id="t", cycle_id="c")
        both = await research.brief(found.items, task_id="t", cycle_id="c")
    assert llm.calls == 0
    for b in (brief, both):
        dumped = b.model_dump_json()
        assert "evil.example" not in dumped and not looks_like_injection(dumped)
        assert "Ignore previous" not in dumped and "You are now" not in dumped
        assert set(b.sources) <= {HOSTILE[1], GOOD[1]}
        assert all(p.source_url in b.sources for p in b.key_points)
    assert brief.topic == "News"  # the title was nothing but an injection
    assert both.key_points == (KeyPoint(claim=GOOD[2], source_url=GOOD[1]),)
    assert both.angle == GOOD[2] and both.sources == (HOSTILE[1], GOOD[1])


def test_links_in_a_short_item_survive_only_when_they_are_its_own_url() -> None:
    its = items(("Tool 2.0", "http://127.0.0.1/t2",
                 "See https://other.example/x for details and www.evil.example/y too. Docs at http://127.0.0.1/t2 now."))
    brief, dropped = item_brief(its)
    text = brief.model_dump_json()
    assert "other.example" not in text and "evil.example" not in text and "http://127.0.0.1/t2" in text
    assert dropped == 0 and brief.sources == ("http://127.0.0.1/t2",)


def test_key_points_are_capped_and_empty_summaries_still_make_a_brief() -> None:
    many = items(("Many facts", "http://127.0.0.1/m", " ".join(f"Fact {i} is true." for i in range(20))))
    assert len(item_brief(many)[0].key_points) == 6
    bare, _ = item_brief(items(("Only a title", "http://127.0.0.1/o", "")))
    assert bare.topic == "Only a title" and bare.key_points == () and bare.sources == ("http://127.0.0.1/o",)


def test_sentences() -> None:
    assert sentences("One. Two!  Three?\nFour") == ["One.", "Two!", "Three?", "Four"]
    assert sentences("Version 3.14 is out.") == ["Version 3.14 is out."]
    assert sentences("") == []
