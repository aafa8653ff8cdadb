"""Prompts send only what each role needs (issue 15.1): no URL the reply would only copy back, no text twice."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from agents.messages import FeedItem
from agents.research import ResearchAnswer, prompt_items, research_messages, sanitise_brief
from agents.text import extract_urls
from agents.writer import Writer, brief_text, finish_draft, WriterOutput
from tests.fakes.scripted_llm import ScriptedLLM, sample_brief

URL = "https://news.example.org/jsonb.html"
LEAD = "SQLite now stores JSON in a binary representation called JSONB."


def item(summary: str, content: str) -> FeedItem:
    return FeedItem(feed_url="https://news.example.org/feed.xml", url=URL, title="SQLite 3.45 adds JSONB",
                    summary=summary, content=content, content_hash="h", published=datetime(2025, 7, 2, tzinfo=timezone.utc))


def test_research_prompt_sends_a_summary_the_article_already_contains_once() -> None:
    [with_lead] = prompt_items([item(LEAD, f"{LEAD} Functions such as json_extract accept both forms.")])
    assert "summary" not in with_lead and with_lead["article"].startswith(LEAD)
    [other] = prompt_items([item("A different teaser.", "The article text.")])
    assert other["summary"] == "A different teaser." and other["article"] == "The article text."
    assert set(with_lead) == {"n", "url", "title", "article"}  # no date: a brief carries none


def test_research_asks_for_sources_by_item_number_and_no_sources_list() -> None:
    system, user = research_messages([item(LEAD, "")])
    assert "source_url the n of its item" in system["content"]
    assert "sources" not in ResearchAnswer.model_json_schema()["properties"]
    assert json.loads(user["content"].split("\n", 1)[1].rsplit("\n", 1)[0])[0]["n"] == 1
    # what the model answers that way resolves to the item's URL, and a listed source is still heard
    brief = sanitise_brief(ResearchAnswer(topic="JSONB", key_points=[{"claim": "It is binary.", "source_url": "1"}]),
                           [item(LEAD, "")])
    assert brief.sources == (URL,) and brief.key_points[0].source_url == URL
    assert ResearchAnswer.model_validate({"topic": "t", "sources": [URL]}).sources == [URL]


def test_writer_prompt_carries_the_claims_without_urls_and_the_draft_still_lists_every_source() -> None:
    brief = sample_brief()
    text = brief_text(brief)
    assert extract_urls(text) == []
    assert all(kp.claim in text for kp in brief.key_points)
    system, user = Writer(ScriptedLLM()).messages(brief)
    assert extract_urls(system["content"] + user["content"]) == []
    assert "Write no links" in system["content"]
    # the sections writer (embedded model, grammar) keeps each point's source: its replies were measured so
    _, sections_user = Writer(ScriptedLLM(), structured=True).messages(brief)
    assert brief.sources[0] in extract_urls(sections_user["content"])
    draft = finish_draft(WriterOutput(title="Rust builds get faster", body_markdown="Builds are faster now. " * 10), brief)
    assert all(s in extract_urls(draft.body_markdown.split("## Sources", 1)[1]) for s in brief.sources)
