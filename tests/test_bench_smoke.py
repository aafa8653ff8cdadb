"""The benchmarks' selfpub side at tiny size, so they cannot rot (no CrewAI needed)."""

from __future__ import annotations

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
from bench.side_by_side import model
from bench.side_by_side.run import run_selfpub
from bench.side_by_side.selfpub_side import load_items
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


async def test_side_by_side_selfpub_publishes_full_length_articles_and_counts_tokens() -> None:
    server = CountingServer(words=WORDS)
    with server.serve() as url:
        side = await run_selfpub(server, url, load_items(limit=2))
    assert side.published(WORDS) == 2, side.note
    assert set(side.tally.by_kind) == {"article", "review"}
    assert side.tally.prompt_tokens > 0 and side.tally.completion_tokens > 0
    assert side.tally.failed == 0 and not server.unknown


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
