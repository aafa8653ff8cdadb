"""Orchestration overhead as a share of a cycle: wall time minus waiting on the LLM and the platforms.

    .venv/bin/python bench/bench_overhead_share.py [--cycles 3] [--items-per-cycle 2]
        [--first-token 0.3] [--per-token 0.01] [--devto-latency 0.3] [--feed-latency 0.1]

Whole cycles of the real daemon wiring (build_deps, MeteredLLM, ledger and task
store on SQLite, research fetching a feed over HTTP, the Dev.to adapter and
outbox) against peers on 127.0.0.1 that take realistic time:

    LLM      the counting OpenAI-compatible server, sleeping time-to-first-token
             plus a per-completion-token time (default 0.3 s + 10 ms/token, ~100 tokens/s)
    Dev.to   a Forem-like server (POST /api/articles -> 201), 0.3 s per request,
             behind the adapter's own rate limiter (1 write/s; its waits count as platform time)
    feed     an RSS server, 0.1 s per request

Waiting is measured as the union of the intervals during which at least one
peer was serving a request for us (or the Dev.to limiter made us wait), so
concurrent calls are not counted twice. overhead = wall - waiting; the share
is overhead / wall. Goal: under 5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from bench.side_by_side.peers import DevtoServer, FeedServer, union_seconds  # noqa: E402
from bench.side_by_side.selfpub_side import SelfpubRun, load_items, selfpub_settings  # noqa: E402
from bench.side_by_side.server import CountingServer, Latency  # noqa: E402
from config.settings import DevtoSettings  # noqa: E402
from publishers.devto import DevtoPublisher  # noqa: E402
from publishers.dispatch import Dispatcher  # noqa: E402
from publishers.outbox import Outbox  # noqa: E402
from publishers.ratelimit import devto_limiters  # noqa: E402


@dataclass
class CycleTime:
    """One cycle: wall time and what of it was spent waiting on each peer."""

    wall: float
    waiting: float
    llm: float
    devto: float
    feed: float
    published: int

    @property
    def overhead(self) -> float:
        return self.wall - self.waiting

    @property
    def share(self) -> float:
        return self.overhead / self.wall if self.wall else 0.0


@dataclass
class LimiterWaits:
    """The Dev.to limiter's sleep, recording how long it made the adapter wait."""

    intervals: list[tuple[float, float]] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)
        self.intervals.append((t0, time.perf_counter()))


async def measure(cycles: int, items_per_cycle: int, latency: Latency, devto_latency: float,
                  feed_latency: float, words: int = 300) -> list[CycleTime]:
    """Run the cycles; one CycleTime each."""
    llm = CountingServer(words=words, latency=latency)
    devto, feed, waits = DevtoServer(latency=devto_latency), FeedServer(latency=feed_latency), LimiterWaits()
    items = load_items()
    out: list[CycleTime] = []
    with llm.serve() as llm_url, devto.serve() as devto_url, feed.serve() as feed_url, \
            tempfile.TemporaryDirectory() as tmp:
        settings = selfpub_settings(Path(tmp), llm_url, f"{feed_url}/feed.xml", items_per_cycle=items_per_cycle)
        http = httpx.AsyncClient(timeout=30)
        writes, articles = devto_limiters(sleep=waits.sleep)
        publisher = DevtoPublisher(http, DevtoSettings(enabled=True, base_url=devto_url),
                                   SecretStr(devto.api_key), writes=writes, articles=articles)
        run = SelfpubRun(settings, channel=None)
        outbox = Outbox(run.engine)  # SelfpubRun opened every room's tables
        run.deps.channel = Dispatcher(outbox, devto=publisher)
        run.closers.append(http.aclose)
        try:
            for c in range(cycles):
                start = items_per_cycle * c % len(items)
                feed.items = (items + items)[start:start + items_per_cycle]
                t0 = time.perf_counter()
                report = await run.cycle()
                t1 = time.perf_counter()
                llm_iv = [(s.started, s.finished) for s in llm.served]
                devto_iv = devto.intervals + waits.intervals
                out.append(CycleTime(
                    wall=t1 - t0,
                    waiting=union_seconds(llm_iv + devto_iv + feed.intervals, t0, t1),
                    llm=union_seconds(llm_iv, t0, t1),
                    devto=union_seconds(devto_iv, t0, t1),
                    feed=union_seconds(feed.intervals, t0, t1),
                    published=report.published,
                ))
        finally:
            await run.aclose()
    return out


def main() -> int:
    """Run and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--items-per-cycle", type=int, default=2)
    ap.add_argument("--first-token", type=float, default=0.3, help="LLM seconds to first token")
    ap.add_argument("--per-token", type=float, default=0.01, help="LLM seconds per completion token")
    ap.add_argument("--devto-latency", type=float, default=0.3)
    ap.add_argument("--feed-latency", type=float, default=0.1)
    args = ap.parse_args()
    rows = asyncio.run(measure(args.cycles, args.items_per_cycle, Latency(args.first_token, args.per_token),
                               args.devto_latency, args.feed_latency))
    print(f"{args.cycles} cycles x {args.items_per_cycle} items; LLM {args.first_token:g} s + {args.per_token * 1000:g} ms/token, "
          f"Dev.to {args.devto_latency:g} s/request (+ its 1 write/s limiter), feed {args.feed_latency:g} s/request")
    for i, r in enumerate(rows, 1):
        print(f"cycle {i}: wall {r.wall:6.2f} s = waiting {r.waiting:6.2f} s (LLM {r.llm:.2f}, Dev.to {r.devto:.2f}, "
              f"feed {r.feed:.2f}) + overhead {r.overhead * 1000:6.1f} ms -> {r.share:.2%}; published {r.published}")
    wall = sum(r.wall for r in rows)
    over = sum(r.overhead for r in rows)
    print(f"overhead share over {len(rows)} cycles: {over / wall:.2%} ({over:.2f} s of {wall:.2f} s; goal < 5 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
