"""Soak: thousands of real cycles in one process, watching memory, file descriptors and database size.

    .venv/bin/python bench/bench_soak.py [--cycles 2000] [--warmup 200] [--new-items 3]

The daemon's cycle job, as `selfpub run` runs it (daemon/wiring.OrchestratorSlot.cycle on deps built by
daemon/wiring_agents.build_deps from a Settings object, heap trimmed after each cycle): the orchestrator, research agent fetching a real feed over HTTP, writer, critic,
metered LLM client, ledger and task store on one SQLite file, the local Markdown publisher through
the exactly-once outbox. The stand-ins are fast: the fake OpenAI-compatible server
(tests/fakes/openai.py, on a real 127.0.0.1 socket, reporting usage) and a feed server that offers
a few new items every cycle. Everything runs in this process so /proc/self can be read.

Printed: RSS at the end of the warm-up and its peak afterwards (growth %, goal < 10 %), open file
descriptors at the end of the warm-up and at the end (goal: flat), database bytes against posts
(checkpoints, bytes per post, least-squares slope and R^2, and the bytes per post of the first and
second half after the warm-up: a linear store has a ratio near 1).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import random
import resource
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from config.settings import Settings  # noqa: E402
from daemon.logs import setup_logging  # noqa: E402
from daemon.service import CycleContext  # noqa: E402
from daemon.state import open_state  # noqa: E402
from daemon.wiring import OrchestratorSlot  # noqa: E402
from ledger.funding import deposit  # noqa: E402
from publishers.models import DONE  # noqa: E402
from tests.e2e.support import FAKE_MODEL, LoopbackHTTP, fooled_model  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402

WORDS = ("sqlite postgres kernel rust python compiler garbage collector scheduler tensor quantum cache "
         "latency throughput browser wasm linker allocator protocol gossip raft paxos consensus vector index "
         "lexer parser bytecode jit tracing sandbox container cgroup namespace firmware bootloader driver "
         "filesystem journal snapshot replica shard query planner optimizer lattice compression entropy "
         "codec shader raytracer physics solver monad functor closure coroutine fiber actor mailbox").split()


# -- a feed that has a few new items every cycle -------------------------------------------------------


class GrowingFeed(LoopbackHTTP):
    """An RSS feed on 127.0.0.1 whose newest `window` items change as `advance(n)` publishes n new ones."""

    def __init__(self, window: int = 12, seed: int = 7):
        self.window = window
        self.rng = random.Random(seed)
        self.items: list[tuple[str, str, str]] = []  # the newest `window` only: the stand-in must not grow
        self.offered = 0
        self.body = b""
        self._lock = threading.Lock()
        feed = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                with feed._lock:
                    body = feed.body
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._listen(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        self.url += "/feed.xml"

    def _words(self, n: int) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(n))

    def advance(self, n: int) -> None:
        """Publish n new items (distinct topics, so no near-duplicate filtering kicks in)."""
        base = self.url.rsplit("/", 1)[0]
        for _ in range(n):
            k = self.offered
            self.offered += 1
            title = f"{self._words(5).capitalize()} {k}"
            self.items.append((title, f"{base}/posts/{k}", f"{self._words(30).capitalize()}. Issue {k}."))
        del self.items[:-self.window]
        xml = "".join(f"<item><title>{t}</title><link>{u}</link><description>{d}</description></item>"
                      for t, u, d in reversed(self.items))
        body = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Soak</title>{xml}</channel></rss>'
        with self._lock:
            self.body = body.encode()



# -- what the process holds ----------------------------------------------------------------------------


def rss_kb() -> int:
    """Resident set size now (VmRSS), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def open_fds() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def db_bytes(engine, path: Path) -> int:  # noqa: ANN001
    """The SQLite file's size after folding the WAL into it (so the figure is the data, not the log)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size + (Path(f"{path}-wal").stat().st_size if Path(f"{path}-wal").exists() else 0)


def count_posts(engine) -> int:  # noqa: ANN001
    """Published posts in the outbox."""
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM publishers_outbox WHERE status = :done"), {"done": DONE}).scalar() or 0)


# -- the soak ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    cycle: int
    rss_kb: int
    fds: int
    db_bytes: int
    posts: int
    seconds: float


@dataclass
class SoakResult:
    cycles: int
    warmup: int
    samples: list[Sample] = field(default_factory=list)  # one per `every` cycles, the warm-up end included
    rss_each: list[int] = field(default_factory=list)  # RSS after every cycle
    fds_each: list[int] = field(default_factory=list)
    cycle_seconds: list[float] = field(default_factory=list)
    published: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    llm_calls: int = 0
    feed_items: int = 0
    outbox_files: int = 0

    @property
    def at_warmup(self) -> Sample:
        return next(s for s in self.samples if s.cycle == self.warmup)

    @property
    def after_warmup(self) -> list[Sample]:
        return [s for s in self.samples if s.cycle >= self.warmup]

    @property
    def rss_warmup_kb(self) -> int:
        return self.rss_each[self.warmup - 1]

    @property
    def rss_peak_after_kb(self) -> int:
        return max(self.rss_each[self.warmup - 1:])

    @property
    def rss_growth_pct(self) -> float:
        """Peak RSS after the warm-up over RSS at its end, in percent."""
        return 100.0 * (self.rss_peak_after_kb - self.rss_warmup_kb) / self.rss_warmup_kb

    @property
    def fds_warmup(self) -> int:
        return self.fds_each[self.warmup - 1]

    @property
    def fds_end(self) -> int:
        return self.fds_each[-1]

    @property
    def fds_max_after(self) -> int:
        return max(self.fds_each[self.warmup - 1:])

    @property
    def rss_slope_kb_per_cycle(self) -> float:
        """Least-squares slope of RSS over the cycles after the warm-up, KiB per cycle."""
        ys = self.rss_each[self.warmup - 1:]
        xs = range(len(ys))
        mx, my = (len(ys) - 1) / 2, sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0

    def fit(self) -> tuple[float, float, float]:
        """Least squares of database bytes on posts after the warm-up: (slope bytes/post, intercept, R^2)."""
        pts = [(s.posts, s.db_bytes) for s in self.after_warmup]
        n = len(pts)
        mx = sum(x for x, _ in pts) / n
        my = sum(y for _, y in pts) / n
        sxx = sum((x - mx) ** 2 for x, _ in pts)
        sxy = sum((x - mx) * (y - my) for x, y in pts)
        slope = sxy / sxx if sxx else 0.0
        intercept = my - slope * mx
        ss_tot = sum((y - my) ** 2 for _, y in pts)
        ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in pts)
        return slope, intercept, (1.0 - ss_res / ss_tot) if ss_tot else 1.0

    def halves(self) -> tuple[float, float]:
        """Bytes per post over the first and the second half of the run after the warm-up."""
        pts = self.after_warmup
        a, mid, b = pts[0], pts[len(pts) // 2], pts[-1]

        def per_post(s0: Sample, s1: Sample) -> float:
            return (s1.db_bytes - s0.db_bytes) / max(s1.posts - s0.posts, 1)

        return per_post(a, mid), per_post(mid, b)

    def report(self) -> list[str]:
        """The figures, one per line."""
        slope, _, r2 = self.fit()
        first, second = self.halves()
        w, end = self.at_warmup, self.samples[-1]
        secs = self.cycle_seconds
        early = sorted(secs[self.warmup:self.warmup + 100] or secs)
        late = sorted(secs[-100:])
        out = [
            f"soak: {self.cycles} cycles (warm-up {self.warmup}), {self.published} posts published, "
            f"{self.failed} tasks failed, {self.llm_calls} LLM calls, {self.feed_items} feed items offered, "
            f"{self.outbox_files} outbox files",
            f"cycle time: median {early[len(early) // 2] * 1000:.0f} ms just after the warm-up, "
            f"{late[len(late) // 2] * 1000:.0f} ms over the last 100 cycles; total {sum(secs):.0f} s",
            f"RSS: {self.rss_warmup_kb / 1024:.1f} MiB at the end of the warm-up, peak afterwards "
            f"{self.rss_peak_after_kb / 1024:.1f} MiB, end {self.rss_each[-1] / 1024:.1f} MiB: "
            f"growth {self.rss_growth_pct:+.2f} % (goal < 10 %); trend {self.rss_slope_kb_per_cycle:+.1f} KiB/cycle "
            f"after the warm-up",
            f"open fds: {self.fds_warmup} at the end of the warm-up, {self.fds_end} at the end "
            f"(max {self.fds_max_after} after the warm-up; goal: flat)",
            f"database: {w.db_bytes / 1e6:.2f} MB at {w.posts} posts (warm-up end) -> {end.db_bytes / 1e6:.2f} MB "
            f"at {end.posts} posts",
        ]
        marks = sorted({self.cycles * k // 4 for k in (1, 2, 3, 4)})
        by_cycle = {s.cycle: s for s in self.samples}
        cps = [f"{c}: {by_cycle[c].db_bytes / 1e6:.2f} MB / {by_cycle[c].posts} posts" for c in marks if c in by_cycle]
        out.append("database at cycle " + "; ".join(cps))
        out.append(f"database growth: {slope:,.0f} bytes/post (least squares after the warm-up), R^2 {r2:.5f}; "
                   f"{first:,.0f} bytes/post in the first half, {second:,.0f} in the second "
                   f"(ratio {second / first if first else float('nan'):.3f}; linear: ~1)")
        return out


def soak_settings(state: Path, llm_url: str, feed_url: str, items_per_cycle: int) -> Settings:
    """Every role on the fake server, the local publisher only, budget caps that a long soak never hits."""
    role = {"base_url": llm_url, "model": FAKE_MODEL, "max_retries": 0, "timeout_seconds": 20,
            "max_calls_per_cycle": 40, "token_budget_per_cycle": 1_000_000}
    return Settings(
        state_dir=state,
        agents={r: role for r in ("orchestrator", "research", "writer", "critic")},
        prices={FAKE_MODEL: {"input_per_million": "2", "output_per_million": "6", "provider": "fake"}},
        budget={"min_balance": "0.1", "resume_balance": "0.2", "per_cycle_cap": "5", "daily_cap": "100000"},
        research={"items_per_cycle": items_per_cycle, "fetch_timeout_seconds": 20},
        review={"max_revisions": 1},
        sustain={"enabled": False},  # the soak measures growth per post at a fixed plan, not the sustain rule
        publishers={"local": {"enabled": True}},
        logging={"format": "json", "level": "INFO"},
        feeds=[{"url": feed_url}],
    )


async def soak(
    root: Path,
    cycles: int,
    *,
    warmup: int,
    every: int = 25,
    new_items: int = 3,
    items_per_cycle: int = 2,
    progress: Callable[[int, Sample], None] | None = None,
) -> SoakResult:
    """Run `cycles` real cycles in this process; sample RSS and fds after each, the database every `every`."""
    assert 0 < warmup < cycles
    result = SoakResult(cycles=cycles, warmup=warmup)
    llm = FakeOpenAI(default=fooled_model("", writer_payload=False), usage=(900, 400))
    feed = GrowingFeed()
    log_sink = io.StringIO()
    root_logger = logging.getLogger()
    saved = (list(root_logger.handlers), root_logger.level)
    with llm.serve() as llm_url, feed.running():
        settings = soak_settings(root / "state", llm_url, feed.url, items_per_cycle)
        settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        setup_logging(settings, stream=log_sink)  # the daemon's redacting JSON logging, as in `selfpub run`
        state = open_state(settings)  # as `selfpub run` opens it
        engine, journal, budget = state.engine, state.journal, state.budget
        db_path = settings.state_dir / "selfpub.db"
        deposit(journal, 1_000_000_000_000, idempotency_key="soak-funding")
        slot = None
        try:
            slot = OrchestratorSlot(journal, settings, budget)  # the daemon's cycle job
            t_start = time.perf_counter()
            for c in range(1, cycles + 1):
                feed.advance(new_items)
                t0 = time.perf_counter()
                report = await slot.cycle(CycleContext(uuid.uuid4().hex[:16], datetime.now(timezone.utc), threading.Event()))
                result.cycle_seconds.append(time.perf_counter() - t0)
                result.published += report.published
                result.failed += report.failed
                result.errors += report.errors[:3] if len(result.errors) < 20 else []
                result.llm_calls += len(llm.history)
                llm.history.clear()  # the stand-in's own memory is not the daemon's
                log_sink.seek(0)
                log_sink.truncate()
                result.rss_each.append(rss_kb())
                result.fds_each.append(open_fds())
                if c % every == 0 or c == warmup or c == cycles:
                    s = Sample(c, result.rss_each[-1], result.fds_each[-1], db_bytes(engine, db_path),
                               count_posts(engine), time.perf_counter() - t_start)
                    result.samples.append(s)
                    if progress:
                        progress(c, s)
        finally:
            if slot is not None:
                await slot.current.aclose()
            engine.dispose()
            root_logger.handlers[:] = saved[0]
            root_logger.setLevel(saved[1])
        result.feed_items = feed.offered
        outbox = settings.state_dir / "outbox"
        result.outbox_files = sum(1 for p in outbox.rglob("*") if p.is_file()) if outbox.exists() else 0
    return result


def main() -> None:
    """Run the soak and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--every", type=int, default=50, help="sample the database every N cycles")
    ap.add_argument("--new-items", type=int, default=3, help="new feed items per cycle")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    def progress(c: int, s: Sample) -> None:
        if not args.quiet and (c % (args.every * 4) == 0 or c == args.warmup):
            print(f"  cycle {c}: rss {s.rss_kb / 1024:.1f} MiB, fds {s.fds}, db {s.db_bytes / 1e6:.2f} MB, "
                  f"{s.posts} posts, {s.seconds:.0f} s", flush=True)

    with tempfile.TemporaryDirectory(prefix="selfpub-soak-") as d:
        result = asyncio.run(soak(Path(d), args.cycles, warmup=args.warmup, every=args.every,
                                  new_items=args.new_items, progress=progress))
    for line in result.report():
        print(line)
    if result.errors:
        print("first errors: " + " | ".join(result.errors[:5]))


if __name__ == "__main__":
    main()
