"""Tokens per published article: selfpub vs a CrewAI crew, same items, same counting server.

    .venv/bin/python bench/side_by_side/run.py [--items 20] [--words 300] [--skip-crewai]

Both turn the same feed items (items.json) into articles of at least --words
words through one CountingServer on 127.0.0.1, which counts every prompt and
completion token with one tokenizer and reports it as usage. selfpub runs with
the daemon's own wiring (build_deps: feeds over HTTP, MeteredLLM, ledger,
critic, local outbox); the crew (crew.py) runs in its own virtualenv
(setup_crewai.sh), as a subprocess. An article counts as published when it
reached the outbox (selfpub) or the crew's final output (CrewAI) and has at
least --words words.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.side_by_side.model import count_words  # noqa: E402
from bench.side_by_side.peers import FeedServer  # noqa: E402
from bench.side_by_side.selfpub_side import ITEMS_FILE, PRICE, SelfpubRun, load_items, selfpub_settings  # noqa: E402
from bench.side_by_side.server import CountingServer, Tally  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CREWAI_PYTHON = ROOT / "build" / "bench-crewai" / "bin" / "python"
CREW_TIMEOUT_SECONDS = 900
MAX_CYCLES = 5  # selfpub: cycles until every item is done (one is enough with items_per_cycle = items)


@dataclass
class Side:
    """What one framework produced and what it cost."""

    name: str
    tally: Tally
    words: list[int] = field(default_factory=list)  # of every article it produced
    seconds: float = 0.0
    note: str = ""

    def published(self, required: int) -> int:
        """Articles of at least the required length."""
        return sum(w >= required for w in self.words)

    def per_article(self, required: int, tokens: int | None = None) -> float:
        """Tokens per published article."""
        n = self.published(required)
        return (self.tally.tokens if tokens is None else tokens) / n if n else float("nan")

    def cost_per_article(self, required: int) -> float:
        """ucr per published article at the bench price (for information: output tokens cost more)."""
        n = self.published(required)
        t = self.tally
        total = (t.prompt_tokens * PRICE.input_per_million + t.completion_tokens * PRICE.output_per_million) / 1_000_000
        return total / n if n else float("nan")


async def run_selfpub(server: CountingServer, llm_url: str, items: list[dict]) -> Side:
    """selfpub turns the items of one feed into articles (daemon wiring, local outbox)."""
    server.mark("selfpub")
    t0 = time.perf_counter()
    with FeedServer(items=items).serve() as feed, tempfile.TemporaryDirectory() as tmp:
        run = SelfpubRun(selfpub_settings(Path(tmp), llm_url, f"{feed}/feed.xml", items_per_cycle=len(items)))
        try:
            errors = []
            for _ in range(MAX_CYCLES):
                report = await run.cycle()
                errors += report.errors
                if report.planned == 0 and report.resumed == 0:
                    break
            words = [count_words(a) for a in run.outbox_articles()]
        finally:
            await run.aclose()
    return Side("selfpub", server.totals("selfpub"), words, time.perf_counter() - t0, "; ".join(errors[:3]))


def run_crewai(server: CountingServer, llm_url: str, items_file: Path, limit: int, words: int, python: Path) -> Side:
    """The crew turns the same items into articles, in its own virtualenv."""
    server.mark("crewai")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "articles.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTHON"))}
        env.update({"CREWAI_STORAGE_DIR": str(Path(tmp) / "crewai-storage"), "HOME": tmp})
        cmd = [str(python), str(HERE / "crew.py"), "--items", str(items_file), "--base-url", llm_url,
               "--words", str(words), "--out", str(out), "--limit", str(limit)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CREW_TIMEOUT_SECONDS, check=False)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return Side("crewai", server.totals("crewai"), [], seconds, "crew failed: " + " | ".join(tail))
        data = json.loads(out.read_text(encoding="utf-8"))
    return Side(f"crewai {data['crewai']}", server.totals("crewai"), [count_words(a["article"]) for a in data["articles"]],
                seconds)


def print_side(s: Side, required: int) -> None:
    t = s.tally
    print(f"{s.name:14} {s.published(required):>3}/{len(s.words):<3} published  {t.calls:>4} calls  "
          f"{t.prompt_tokens:>7} prompt + {t.completion_tokens:>6} completion = {t.tokens:>7} tokens  "
          f"-> {s.per_article(required):7.0f} tokens/article  ({s.cost_per_article(required):.0f} ucr/article)  "
          f"{s.seconds:5.1f} s")
    for kind, (calls, p, c) in sorted(t.by_kind.items()):
        n = max(s.published(required), 1)
        print(f"{'':16}{kind:9} {calls:>4} calls  {p / n:7.0f} prompt + {c / n:6.0f} completion per article")
    if s.note:
        print(f"{'':16}note: {s.note}")


def main() -> int:
    """Run both sides and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--words", type=int, default=300, help="required article length")
    ap.add_argument("--skip-crewai", action="store_true")
    ap.add_argument("--crewai-python", type=Path, default=CREWAI_PYTHON)
    args = ap.parse_args()
    items = load_items(limit=args.items)
    server = CountingServer(words=args.words)
    with server.serve() as url:
        sp = asyncio.run(run_selfpub(server, url, items))
        crew = None
        if not args.skip_crewai:
            if args.crewai_python.exists():
                crew = run_crewai(server, url, ITEMS_FILE, len(items), args.words, args.crewai_python)
            else:
                print(f"CrewAI side skipped: no {args.crewai_python} (run bash bench/side_by_side/setup_crewai.sh)")
    print(f"{len(items)} feed items -> articles of >= {args.words} words; tokens counted by the server with "
          f"{server.counter.name}")
    print_side(sp, args.words)
    if crew is not None:
        print_side(crew, args.words)
        ratio = sp.per_article(args.words) / crew.per_article(args.words)
        no_schema = sp.per_article(args.words, sp.tally.tokens - sp.tally.schema_tokens) / crew.per_article(args.words)
        cost_ratio = sp.cost_per_article(args.words) / crew.cost_per_article(args.words)
        print(f"ratio selfpub/crewai tokens per published article: {ratio:.2f} (goal <= 0.50)")
        print(f"  without the response_format schemas in selfpub's prompt (a grammar-enforcing server): {no_schema:.2f}")
        print(f"  cost per article at {PRICE.input_per_million / 1e6:g}/{PRICE.output_per_million / 1e6:g} credits per 1M "
              f"prompt/completion tokens: {cost_ratio:.2f}")
    if server.unknown:
        print(f"requests the server does not serve: {sorted(set(server.unknown))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
