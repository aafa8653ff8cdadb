"""Ledger benchmark: `ledger report` over 1,000,000 postings, and reserve+commit throughput.

    .venv/bin/python bench/bench_ledger.py [--postings 1000000] [--commits 5000] [--no-postgres] [--no-cli]
                                           [--load none|normal]

Builds a year of realistic ledger (compute calls by 4 agents on 3 models in
tasks of ~8 calls, engagement accruals per post, tips, settlements, fees,
monthly deposits) with bulk inserts (executemany on SQLite, COPY on
PostgreSQL), rebuilds the running totals and rollup from it, checks nothing
drifted (Journal.verify), then prints one line per figure with its goal and
the ratio to it:

- `ledger report` wall time in this process (build the report and render its
  tables) on SQLite and on PostgreSQL; goal under 0.5 s on SQLite (issue 15);
- reserve+commit pairs per second, one writer, on the same big ledgers;
  goal over 2,000/s on SQLite.

Each timed figure says how much of it was this process's CPU and how long it
was ready to run but waiting for a CPU (Linux schedstat: the machine's other
load); the rest is waiting on the disk (fsyncs, WAL checkpoints) or a server.

--load normal measures under the load of a normal selfpub run: the daemon's
embedded model (agents.llm.embedded.EmbeddedServer, started as
daemon/wiring_agents.build_llm starts it, so with llama.cpp's own thread
count: half the cores for generation, all of them for the prompt) answers one
chat call after another, sent by a child process (this script with --drive),
for as long as the report, the CLI and reserve+commit are timed, as a cycle's
writer and critic keep it busy (a Markdown article of up to 1,024 tokens, then
a JSON review of up to 384). The timed process runs only the ledger, as the
daemon's does while it awaits a reply. The ledger is built before the model is
kept busy. Each figure's line
says which load was applied; a `load:` line gives what the model did meanwhile
(calls, tokens streamed, cores its process used); the load average (1 min) is
printed at the start and the end, and as each ledger's timing starts and ends.
--load none (the default) is a quiet process, as before.

PostgreSQL is the server the tests use ($SELFPUB_TEST_PG_URL, default
postgresql://postgres@127.0.0.1:5432/test), in a schema of its own that is
dropped afterwards.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from kernel.db import make_engine  # noqa: E402
from config.settings import BudgetSettings  # noqa: E402
from ledger import Budget, Entry, Journal  # noqa: E402
from ledger.reports import build_report, render_table  # noqa: E402

UTC = timezone.utc
END = datetime(2026, 11, 1, tzinfo=UTC)  # the ledger's "now": a year of history before it
DAYS = 365
PG_URL = os.environ.get("SELFPUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REPORT_GOAL_S = 0.5
THROUGHPUT_GOAL = 2_000
AGENTS = ("orchestrator", "research", "writer", "critic")
MODELS = ("smollm2-135m-instruct", "qwen2.5-7b", "gpt-4o-mini")
PLATFORMS = ("devto", "bluesky")

TXN_COLS = ("id", "time", "memo", "kind", "idempotency_key", "task_id", "post_id", "tx_hash", "model",
            "input_tokens", "output_tokens")
POSTING_COLS = ("txn_id", "account", "commodity", "amount")


@dataclass(frozen=True)
class Built:
    transactions: int
    postings: int
    seconds: float


def generate(postings: int, seed: int = 7) -> Iterator[tuple[tuple, list[tuple]]]:
    """(transaction row, its posting rows) for about `postings` postings over DAYS days."""
    rng = random.Random(seed)
    per_day = max(-(-postings // DAYS), 2)
    start = END - timedelta(days=DAYS)
    txn_id = made = 0
    task = 0
    calls_left = 0

    def txn(when: datetime, kind: str, memo: str, entries: list[tuple[str, int]], **fields: object) -> tuple:
        nonlocal txn_id, made
        txn_id += 1
        made += len(entries)
        row = (txn_id, when, memo, kind, f"bench:{kind}:{txn_id}", fields.get("task_id"), fields.get("post_id"),
               fields.get("tx_hash"), fields.get("model"), fields.get("input_tokens"), fields.get("output_tokens"))
        return row, [(txn_id, account, "CR", amount) for account, amount in entries]

    for day in range(DAYS):
        midnight = start + timedelta(days=day)
        if day % 30 == 0:
            yield txn(midnight + timedelta(minutes=1), "deposit", "monthly funding",
                      [("assets:wallet", 500_000_000), ("equity:opening", -500_000_000)])
        day_made = 0
        while day_made < per_day and made < postings:
            when = midnight + timedelta(seconds=rng.randrange(86_400))
            roll = rng.random()
            before = made
            if roll < 0.86:
                if calls_left == 0:
                    task, calls_left = task + 1, rng.randint(5, 11)
                calls_left -= 1
                cost = rng.randint(200, 40_000)
                agent, model = rng.choice(AGENTS), rng.choice(MODELS)
                yield txn(when, "compute", f"{agent} {model}",
                          [(f"expenses:compute:{agent}", cost), ("liabilities:provider:embedded", -cost)],
                          task_id=f"task-{task}", model=model, input_tokens=rng.randint(200, 4_000),
                          output_tokens=rng.randint(50, 800))
            elif roll < 0.95 and task > 1:
                platform = rng.choice(PLATFORMS)
                earned_task = rng.randint(max(1, task - 60), task - 1)
                amount = rng.randint(100, 20_000)
                yield txn(when, "engagement", f"{platform} engagement",
                          [("assets:receivable:engagement", amount), (f"income:engagement:{platform}", -amount)],
                          task_id=f"task-{earned_task}", post_id=f"{platform}:{earned_task}")
            elif roll < 0.98:
                amount = rng.randint(1_000, 2_000_000)
                yield txn(when, "tip", "tip", [("assets:wallet", amount), ("income:tips", -amount)],
                          tx_hash=f"0x{rng.getrandbits(256):064x}")
            elif roll < 0.995:
                amount = rng.randint(100_000, 3_000_000)
                yield txn(when, "settlement", "pay provider",
                          [("liabilities:provider:embedded", amount), ("assets:wallet", -amount)],
                          tx_hash=f"0x{rng.getrandbits(256):064x}")
            else:
                amount = rng.randint(100, 5_000)
                yield txn(when, "fee", "gas", [("expenses:fees:gas", amount), ("assets:wallet", -amount)])
            day_made += made - before
        if made >= postings:
            break


# A cycle's calls to the embedded model, as the load of a normal run: the writer's article, then the critic's review.
ITEM = (
    "Python 3.14 ships a free-threaded build as a supported option: the global interpreter lock can be "
    "turned off, and C extensions declare whether they are safe without it. The release notes list the "
    "changes to the specialising interpreter, the cost of the new reference counting on single-threaded "
    "code (a few percent on the pyperformance suite), and the packages that already publish wheels for "
    "the free-threaded build. Maintainers are asked to test their extensions and to report crashes. "
) * 3
LOAD_CALLS = (
    {"messages": [
        {"role": "system", "content": "You are a technical writer for Dev.to: write one short article from the "
                                      "research brief. Reply in Markdown only: a title line, the article, a Tags line."},
        {"role": "user", "content": f"Brief:\n{ITEM}"}],
     "max_tokens": 1024},
    {"messages": [
        {"role": "system", "content": "You are a critic: score the draft from 0 to 10 and list what to fix. Reply in JSON."},
        {"role": "user", "content": f"Draft:\n{ITEM}"}],
     "max_tokens": 384,
     "response_format": {"type": "json_object", "schema": {
         "title": "Review", "type": "object", "required": ["score", "fixes"],
         "properties": {"score": {"type": "integer"}, "fixes": {"type": "array", "items": {"type": "string"}}}}}},
)


@dataclass
class NormalRun:
    """The load of a normal selfpub run: the daemon's embedded model answering a cycle's calls back to back.

    The server is started exactly as the daemon starts it (EmbeddedServer() with no thread count: llama.cpp's
    default, half the cores to generate and all of them for the prompt). While `generating()` is open a child
    process (this script with --drive) sends it one call after another, so the process being timed runs only
    the ledger, as the daemon's process does while it awaits a model's reply.
    """

    threads: str = ""
    window: tuple[int, int, float, float] = (0, 0, 0.0, 0.0)  # the last generating(): calls, tokens, s, server CPU s
    failed: int = 0
    _server: Any = None

    def start(self) -> NormalRun:
        from agents.llm.embedded import EmbeddedServer

        self._server = EmbeddedServer().start()
        self.threads = self._server_threads()
        return self

    def _server_threads(self) -> str:
        """The thread counts the server runs with (llama.cpp's defaults, as in the daemon)."""
        from llama_cpp.server.settings import ModelSettings

        settings = ModelSettings(model="-")
        return f"{settings.n_threads} to generate, {settings.n_threads_batch} for the prompt"

    def _server_cpu(self) -> float:
        """CPU seconds the server process has used, all its threads (Linux /proc; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self._server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @contextmanager
    def generating(self) -> Iterator[NormalRun]:
        """Keep the model generating until the block ends (from its first streamed token on)."""
        driver = subprocess.Popen(  # noqa: S603
            [sys.executable, __file__, "--drive", self._server.base_url, self._server.alias],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        try:
            if driver.stdout.readline().strip() != "generating":
                raise RuntimeError(f"the load driver stopped before the model generated (exit {driver.wait()})")
            began, cpu = time.perf_counter(), self._server_cpu()
            yield self
            seconds, cpu = time.perf_counter() - began, self._server_cpu() - cpu
            driver.stdin.close()  # the driver stops at once and prints what it did
            calls, tokens, self.failed = (int(n) for n in driver.stdout.readline().split())
            self.window = (calls, tokens, seconds, cpu)
        finally:
            if driver.poll() is None:
                driver.kill()
            driver.wait()

    def describe(self) -> str:
        """Which load was applied, for the printed lines."""
        calls, tokens, seconds, cpu = self.window
        rate = f", {tokens / seconds:.0f} tokens/s, {cpu / seconds:.2f} cores" if seconds else ""
        failed = f"; {self.failed} calls failed" if self.failed else ""
        return (f"load: a normal run's (the embedded model, threads {self.threads}, generating throughout: "
                f"{calls} calls, {tokens:,} tokens in {seconds:.1f}s{rate}{failed})")


def drive(base_url: str, alias: str) -> int:
    """The load driver (--drive): a cycle's calls, streamed back to back, until stdin closes.

    Prints "generating" at the first token, and "calls tokens failed" when it stops (a call cut short counts).
    """
    import httpx

    counts = {"calls": 0, "tokens": 0, "failed": 0}
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    with httpx.Client(base_url=base_url, timeout=300.0) as http:
        i = 0
        while not stop.is_set():
            body = {"model": alias, "temperature": 0.7, "seed": i, "stream": True, **LOAD_CALLS[i % len(LOAD_CALLS)]}
            try:
                with http.stream("POST", "/chat/completions", json=body) as reply:
                    reply.raise_for_status()
                    for chunk in reply.iter_lines():
                        if chunk.startswith("data: {") and '"content"' in chunk:
                            counts["tokens"] += 1  # one streamed chunk a token
                            if counts["tokens"] == 1:
                                print("generating", flush=True)
                        if stop.is_set():
                            break  # closing the stream ends the call
                counts["calls"] += 1
            except httpx.HTTPError:
                counts["failed"] += 1
                if counts["failed"] > 3 and not counts["tokens"]:
                    return 1
                time.sleep(0.1)
            i += 1
    print(counts["calls"], counts["tokens"], counts["failed"], flush=True)
    return 0


def build(engine: Engine, postings: int) -> Built:
    """Bulk-load about `postings` postings into a migrated, empty ledger, then rebuild its totals."""
    journal = Journal(engine)
    journal.migrate()
    began = time.perf_counter()
    n_txn = n_post = 0
    with journal.writer.begin() as conn:
        raw = conn.connection.dbapi_connection
        if journal.sql.pg:
            cur = raw.cursor()
            with cur.copy(f"COPY ledger_txn ({', '.join(TXN_COLS)}) FROM STDIN") as copy_txn:
                posting_rows: list[tuple] = []
                for row, rows in generate(postings):
                    copy_txn.write_row(row)
                    posting_rows += rows
                    n_txn += 1
            with cur.copy(f"COPY ledger_posting ({', '.join(POSTING_COLS)}) FROM STDIN") as copy_post:
                for row in posting_rows:
                    copy_post.write_row(row)
            n_post = len(posting_rows)
            for table in ("ledger_txn", "ledger_posting"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        else:
            ts = journal.sql.ts
            txns: list[tuple] = []
            posts: list[tuple] = []
            cur = raw.cursor()

            def flush() -> None:
                cur.executemany(f"INSERT INTO ledger_txn ({', '.join(TXN_COLS)}) VALUES ({', '.join('?' * len(TXN_COLS))})", txns)
                cur.executemany("INSERT INTO ledger_posting (txn_id, account, commodity, amount) VALUES (?, ?, ?, ?)", posts)
                txns.clear()
                posts.clear()

            for row, rows in generate(postings):
                txns.append((row[0], ts(row[1]), *row[2:]))
                posts += rows
                n_txn += 1
                n_post += len(rows)
                if len(posts) >= 50_000:
                    flush()
            flush()
    journal.rebuild_totals()
    seconds = time.perf_counter() - began
    settle(engine)
    return Built(n_txn, n_post, seconds)


def settle(engine: Engine) -> None:
    """Bring a freshly loaded database to the state a year-old one is in, before timing it.

    PostgreSQL: ANALYZE (autovacuum would have by now) and CHECKPOINT; SQLite:
    checkpoint and truncate the WAL (no ANALYZE: a real selfpub.db never has
    statistics). Then flush the OS's dirty pages, so the bulk load's write-back
    does not slow the fsyncs being measured.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            auto.execute(text("ANALYZE"))
            auto.execute(text("CHECKPOINT"))
        else:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    os.sync()


@dataclass(frozen=True)
class Timing:
    """A wall-clock figure, the CPU time this process spent on it, and how long it waited for a CPU to run on.

    The rest of the wall time is waiting on the disk (fsync, checkpoints), the server or a lock.
    """

    wall: float
    cpu: float
    runnable: float = 0.0  # ready to run, not running: the machine's other load (Linux schedstat; 0 elsewhere)


def runnable_seconds() -> float:
    """Seconds this thread has spent ready to run but waiting for a CPU (Linux /proc schedstat; 0 elsewhere)."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def time_report(engine: Engine, runs: int = 3) -> Timing:
    """Median time of `ledger report` (build + render the tables, output discarded), in seconds.

    Each run opens a fresh connection, as each `selfpub ledger report` does
    (SQLite's page cache starts cold; the OS's is warm).
    """
    walls, cpus, waits = [], [], []
    for _ in range(runs):
        fresh = make_engine(engine.url.render_as_string(hide_password=False))
        began, cpu, runnable = time.perf_counter(), time.process_time(), runnable_seconds()
        journal = Journal(fresh)
        budget = Budget(journal, BudgetSettings(), clock=lambda: END)
        report = build_report(journal, budget, top=20)  # as `selfpub ledger report` builds its table
        render_table(report, Console(file=io.StringIO(), width=120), posts=20)
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - cpu)
        waits.append(runnable_seconds() - runnable)
        fresh.dispose()
    return Timing(statistics.median(walls), statistics.median(cpus), statistics.median(waits))


def time_cli(url: str, tmp: Path) -> tuple[float, float]:
    """Wall time of the whole `selfpub ledger report` process, and of `selfpub --help` (start-up alone)."""
    config = tmp / "bench.toml"
    config.write_text(f'state_dir = "{tmp / "state"}"\n[database]\nurl = "{url}"\n')
    selfpub = Path(sys.executable).with_name("selfpub")

    def wall(*args: str) -> float:
        began = time.perf_counter()
        subprocess.run([str(selfpub), "--config", str(config), *args], check=True, capture_output=True)
        return time.perf_counter() - began

    wall("ledger", "report")  # warm the OS cache of the interpreter's files
    return statistics.median(wall("ledger", "report") for _ in range(3)), wall("--help")


def throughput(engine: Engine, pairs: int) -> Timing:
    """Seconds per reserve+commit pair with one writer (the budget lock taken twice per pair)."""
    journal = Journal(engine)
    budget = Budget(journal, BudgetSettings(daily_cap="1000000", per_cycle_cap="1000000", min_balance="0"))
    journal.post("deposit", [Entry("assets:wallet", 10**12), Entry("equity:opening", -(10**12))],
                 idempotency_key=f"bench-fund-{uuid.uuid4()}")
    for _ in range(min(pairs // 10, 200)):  # warm caches and prepared statements
        budget.commit(budget.reserve("writer", 100, model="m", provider="embedded", cycle_id="warm", task_id="t"), 50)
    began, cpu, runnable = time.perf_counter(), time.process_time(), runnable_seconds()
    for i in range(pairs):
        hold = budget.reserve("writer", 1_000, model="m", provider="embedded", cycle_id=f"c{i // 50}", task_id=f"t{i // 8}")
        budget.commit(hold, 700)
    return Timing((time.perf_counter() - began) / pairs, (time.process_time() - cpu) / pairs,
                  (runnable_seconds() - runnable) / pairs)


def verify(engine: Engine) -> list[str]:
    """Journal.verify() on the built ledger."""
    return Journal(engine).verify()


def line(name: str, value: str, goal: str, ratio: float | None, ok: bool | None, note: str = "") -> str:
    """One printed figure: name, value, goal and the ratio to it."""
    verdict = "" if ok is None else ("  OK" if ok else "  MISSED")
    ratio_text = "" if ratio is None else f", ratio {ratio:.2f}x"
    return f"{name:<52} {value:>14}   (goal {goal}{ratio_text}){verdict}{'  [' + note + ']' if note else ''}"


LOADS = ("none", "normal")


def run(
    postings: int, commits: int, postgres: bool, out: TextIO = sys.stdout, cli: bool = True, load: str = "none"
) -> dict[str, float]:
    """Build, measure and print every figure under `load` (one of LOADS); returns them by name."""
    figures: dict[str, float] = {}
    print(f"load average (1 min) at the start: {os.getloadavg()[0]:.2f}", file=out)
    normal = NormalRun().start() if load == "normal" else None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
            targets = [("SQLite", f"sqlite:///{Path(tmp) / 'ledger.db'}", None)]
            if postgres:
                schema = f"bench_{uuid.uuid4().hex[:10]}"
                targets.append(("PostgreSQL", f"{PG_URL}?options=-csearch_path%3D{schema}", schema))
            admin = make_engine(PG_URL, pool=False) if postgres else None
            for name, url, schema in targets:
                if schema:
                    with admin.begin() as conn:
                        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                engine = make_engine(url)
                try:
                    measure(name, engine, url, Path(tmp), postings, commits, cli, normal, figures, out)
                finally:
                    engine.dispose()
                    if schema:
                        with admin.begin() as conn:
                            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            if admin is not None:
                admin.dispose()
    finally:
        if normal is not None:
            normal.stop()
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}", file=out)
    return figures


def measure(  # noqa: PLR0913
    name: str, engine: Engine, url: str, tmp: Path, postings: int, commits: int, cli: bool,
    normal: NormalRun | None, figures: dict[str, float], out: TextIO,
) -> None:
    """Build one ledger, then time its report and reserve+commit (under the normal run's load if given)."""
    built = build(engine, postings)
    problems = verify(engine) if postings <= 2_000_000 else []
    print(f"{name}: built {built.postings:,} postings in {built.transactions:,} transactions "
          f"in {built.seconds:.1f}s; verify: {'clean' if not problems else problems[:3]}", file=out)
    under = " (normal load)" if normal is not None else ""
    with normal.generating() if normal is not None else _quiet():
        print(f"  load average (1 min) as the timing starts: {os.getloadavg()[0]:.2f}", file=out)
        timing = time_report(engine)
        seconds = timing.wall
        figures[f"report_s_{name.lower()}"] = seconds
        goal = REPORT_GOAL_S if name == "SQLite" else None
        print(line(f"ledger report, {name}, {built.postings:,} postings{under}", f"{seconds * 1000:.0f} ms",
                   "< 0.5 s on SQLite" if goal else "none (SQLite's is 0.5 s)",
                   REPORT_GOAL_S / seconds if goal else None, seconds < REPORT_GOAL_S if goal else None,
                   f"this process's CPU: {timing.cpu * 1000:.0f} ms, waiting for a CPU: {timing.runnable * 1000:.0f} ms"),
              file=out)
        if cli and name == "SQLite":
            whole, startup = time_cli(url, tmp)
            figures["cli_s_sqlite"] = whole
            print(line(f"  the whole `selfpub ledger report` process{under}", f"{whole * 1000:.0f} ms",
                       f"none; {startup * 1000:.0f} ms of it is `selfpub --help`", None, None), file=out)
        per_pair = throughput(engine, commits)
        rate = 1 / per_pair.wall
        figures[f"pairs_per_s_{name.lower()}"] = rate
        goal_ok = rate > THROUGHPUT_GOAL if name == "SQLite" else None
        print(line(f"reserve+commit, {name}, 1 writer{under}", f"{rate:,.0f}/s",
                   "> 2,000/s on SQLite" if name == "SQLite" else "none (SQLite's is 2,000/s)",
                   rate / THROUGHPUT_GOAL if name == "SQLite" else None, goal_ok,
                   f"{per_pair.wall * 1e6:.0f} us a pair: {per_pair.cpu * 1e6:.0f} us this process's CPU, "
                   f"{per_pair.runnable * 1e6:.0f} us waiting for a CPU"),
              file=out)
        print(f"  load average (1 min) as the timing ends: {os.getloadavg()[0]:.2f}", file=out)
    print(f"  {normal.describe() if normal is not None else 'load: none applied (a quiet process)'}", file=out)
    if normal is not None:
        figures[f"load_tokens_per_s_{name.lower()}"] = normal.window[1] / normal.window[2] if normal.window[2] else 0.0


@contextmanager
def _quiet() -> Iterator[None]:
    yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=5_000, help="reserve+commit pairs to time")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-cli", action="store_true", help="skip timing the selfpub process")
    parser.add_argument("--load", choices=LOADS, default="none",
                        help="normal: time everything while the embedded model generates, as in a normal run")
    parser.add_argument("--drive", nargs=2, metavar=("BASE_URL", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        return drive(*args.drive)
    run(args.postings, args.commits, not args.no_postgres, cli=not args.no_cli, load=args.load)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
