"""The benchmarks' selfpub side at tiny size, so they cannot rot (no CrewAI needed)."""

from __future__ import annotations

import asyncio
import json
import py_compile
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.bench_accuracy import measure as measure_accuracy
from bench.bench_overhead_share import measure as measure_overhead
from agents.messages import Draft
from bench.side_by_side import checks, model
from bench.side_by_side.run import ratio_line, run_crew, run_selfpub
from bench.side_by_side.selfpub_side import LONG_ITEMS_FILE, load_items
from bench.side_by_side.server import CountingServer, Latency
from tests.fakes.openai import SERVING

SIDE = Path(__file__).resolve().parents[1] / "bench" / "side_by_side"
WORDS = 300


@pytest.fixture(autouse=True)
def stand_ins_are_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bench stand-in model served here is known to the suite's no-real-model guard as a stand-in."""
    serve = CountingServer.serve

    @contextmanager
    def known(self: CountingServer, *args: object, **kwargs: object) -> Iterator[str]:
        with serve(self, *args, **kwargs) as url:
            address = urlsplit(url).netloc
            SERVING.add(address)
            try:
                yield url
            finally:
                SERVING.discard(address)

    monkeypatch.setattr(CountingServer, "serve", known)


async def test_side_by_side_runs_end_to_end_on_long_items_with_revisions_on_both_sides() -> None:
    # every topic's first review asks for a revision: both sides pay one, and both still publish and pass
    server = CountingServer(words=WORDS, revisions=model.Revisions(rate=1.0))
    items = load_items(LONG_ITEMS_FILE, limit=2)
    with server.serve() as url:
        sp = await run_selfpub(server, url, items, WORDS)
        crew = await asyncio.to_thread(run_crew, server, url, items, WORDS)
        plain = await asyncio.to_thread(run_crew, server, url, items, WORDS, False)
    for side in (sp, crew, plain):
        assert (side.published, side.passed) == (2, 2), (side.name, side.verdicts, side.note)
        assert side.tally.by_kind["article"][0] == 4 and side.tally.by_kind["review"][0] == 4, side.name
        assert side.tally.failed == 0
    # the articles are long enough for research: selfpub's writer does it in the same call (no brief call)
    assert "brief" not in sp.tally.by_kind
    assert sp.tally.tokens < crew.tally.tokens
    assert plain.tally.completion_tokens < crew.tally.completion_tokens  # told to write no inline links, it writes none
    assert not server.unknown
    # the ratio comes from what the server counted, request by request
    served = {tag: sum(s.prompt_tokens + s.completion_tokens for s in server.served if s.tag == tag)
              for tag in ("selfpub", "crew")}
    assert sp.tally.tokens == served["selfpub"] and crew.tally.tokens == served["crew"]
    ratio = (served["selfpub"] / 2) / (served["crew"] / 2)
    assert f"tokens per published article: {ratio:.2f} " in ratio_line(sp, crew)


def test_reviews_ask_for_the_same_revisions_on_every_side() -> None:
    revisions = model.Revisions(rate=0.5, seed=3)
    topics = [it["title"] for it in load_items(LONG_ITEMS_FILE)]
    wanted = [t for t in topics if revisions.wants(t)]
    assert 0 < len(wanted) < len(topics)  # some, not all
    for side in ("selfpub", "crew"):
        first = [revisions.review(side, t)["score"] < 6 for t in topics]
        again = [revisions.review(side, t)["score"] < 6 for t in topics]
        assert [t for t, f in zip(topics, first) if f] == wanted and not any(again)


def test_checks_judge_every_side_alike() -> None:
    item = load_items(LONG_ITEMS_FILE, limit=1)[0]
    good = model.article_text(f"topic: {item['title']}\n" + "\n".join(
        f"- {f.claim} (source: {f.url})" for f in model.facts_of([model.Item(item["title"], item["url"], item["summary"])])),
        WORDS)
    reply = f"{good}\n\n## Sources\n- [the announcement]({item['url']})\nTags: python\nDescription: d.\nBluesky: b."
    draft = checks.markdown_draft(reply)
    assert draft is not None and checks.verdict(draft, item, WORDS) == []
    short = Draft(title=draft.title, body_markdown=draft.body_markdown[:400], tags=draft.tags, bsky_text="b.")
    assert "too_short_for_bench" in checks.verdict(short, item, WORDS)
    assert checks.verdict(None, item, WORDS) == ["unreadable"]


def crew_body(role: str, task: str) -> dict:
    return {"model": "bench-model", "messages": [
        {"role": "system", "content": f"You are {role}. A backstory.\nYour personal goal is: a goal"},
        {"role": "user", "content": f"\nCurrent Task: {task}\n\nProvide your complete response:"},
    ]}


def test_model_answers_a_crew_like_the_selfpub_side() -> None:
    item = load_items(limit=1)[0]
    notes = model.answer(crew_body("Researcher", f"Research.\n\nTitle: {item['title']}\nURL: {item['url']}\n"
                                                  f"Summary: {item['summary']}"), WORDS)
    assert f"(source: {item['url']})" in notes
    article = model.answer(crew_body("Writer", f"Write.\n\nThis is the context you're working with:\n{notes}"), WORDS)
    edited = model.answer(crew_body("Editor", f"Edit.\n\nThis is the context you're working with:\n{notes}\n\n{article}"),
                          WORDS)
    assert model.count_words(article) >= WORDS and model.count_words(edited) >= WORDS
    assert item["url"] in article
    react = crew_body("Writer", f"{notes}\nThought: I now can give a great answer\nFinal Answer: my answer")
    assert model.answer(react, WORDS).startswith("Thought: I now can give a great answer\nFinal Answer: ")


def test_server_reports_the_usage_it_counts_and_honours_max_tokens() -> None:
    server = CountingServer(words=WORDS)
    body = crew_body("Writer", "Write.\n- A claim. (source: https://news.example.org/a.html)") | {"max_tokens": 20}
    status, _, out = server.chat(body, None)
    assert status == 200 and out["choices"][0]["finish_reason"] == "length"
    assert out["usage"]["completion_tokens"] == 20 == server.totals().completion_tokens
    assert out["usage"]["prompt_tokens"] == server.counter.prompt_tokens(body) > 0


async def test_accuracy_ledger_matches_reported_usage_to_the_microcredit() -> None:
    r = await measure_accuracy(cycles=2, items_per_cycle=1, fault_every=3)
    assert r.failed_calls > 0 and r.published == 2
    assert r.difference == 0 and r.provider_liability == r.server_priced > 0
    assert r.open_reservations == 0 and r.ledger_problems == []


async def test_overhead_share_is_measured_per_cycle() -> None:
    rows = await measure_overhead(cycles=1, items_per_cycle=1, latency=Latency(0.02, 0.0005), devto_latency=0.01,
                                  feed_latency=0.01)
    (r,) = rows
    assert r.published == 1
    assert r.llm > 0 and r.devto > 0 and r.feed > 0
    assert 0 < r.waiting <= r.wall and 0 <= r.share < 1


def test_crew_script_and_setup_script_stay_valid(tmp_path: Path) -> None:
    py_compile.compile(str(SIDE / "crew.py"), cfile=str(tmp_path / "crew.pyc"), doraise=True)
    subprocess.run(["bash", "-n", str(SIDE / "setup_crewai.sh")], check=True)
    items = json.loads((SIDE / "items.json").read_text(encoding="utf-8"))
    assert len(items) == 20 and len({i["url"] for i in items}) == 20
    long = load_items(LONG_ITEMS_FILE)
    assert [i["url"] for i in long] == [i["url"] for i in items]
    assert all(1_500 <= len(i["content"]) <= 6_000 for i in long)
