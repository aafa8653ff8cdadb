"""Ledger benchmark: `ledger report` over 1,000,000 postings, and reserve+commit throughput.

    .venv/bin/python bench/bench_ledger.py [--postings 1000000] [--commits 5000] [--no-postgres]

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
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

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
    """A wall-clock figure and the CPU time this process spent on it (the gap: waiting on disk, server, others)."""

    wall: float
    cpu: float


def time_report(engine: Engine, runs: int = 3) -> Timing:
    """Median time of `ledger report` (build + render the tables, output discarded), in seconds.

    Each run opens a fresh connection, as each `selfpub ledger report` does
    (SQLite's page cache starts cold; the OS's is warm).
    """
    walls, cpus = [], []
    for _ in range(runs):
        fresh = make_engine(engine.url.render_as_string(hide_password=False))
        began, cpu = time.perf_counter(), time.process_time()
        journal = Journal(fresh)
        budget = Budget(journal, BudgetSettings(), clock=lambda: END)
        report = build_report(journal, budget, top=20)  # as `selfpub ledger report` builds its table
        render_table(report, Console(file=io.StringIO(), width=120), posts=20)
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - cpu)
        fresh.dispose()
    return Timing(statistics.median(walls), statistics.median(cpus))


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
    began, cpu = time.perf_counter(), time.process_time()
    for i in range(pairs):
        hold = budget.reserve("writer", 1_000, model="m", provider="embedded", cycle_id=f"c{i // 50}", task_id=f"t{i // 8}")
        budget.commit(hold, 700)
    return Timing((time.perf_counter() - began) / pairs, (time.process_time() - cpu) / pairs)


def verify(engine: Engine) -> list[str]:
    """Journal.verify() on the built ledger."""
    return Journal(engine).verify()


def line(name: str, value: str, goal: str, ratio: float | None, ok: bool | None, note: str = "") -> str:
    """One printed figure: name, value, goal and the ratio to it."""
    verdict = "" if ok is None else ("  OK" if ok else "  MISSED")
    ratio_text = "" if ratio is None else f", ratio {ratio:.2f}x"
    return f"{name:<52} {value:>14}   (goal {goal}{ratio_text}){verdict}{'  [' + note + ']' if note else ''}"


def run(
    postings: int, commits: int, postgres: bool, out: TextIO = sys.stdout, cli: bool = True
) -> dict[str, float]:
    """Build, measure and print every figure; returns them by name."""
    figures: dict[str, float] = {}
    print(f"load average (1 min) at the start: {os.getloadavg()[0]:.2f}", file=out)
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
                built = build(engine, postings)
                problems = verify(engine) if postings <= 2_000_000 else []
                print(f"{name}: built {built.postings:,} postings in {built.transactions:,} transactions "
                      f"in {built.seconds:.1f}s; verify: {'clean' if not problems else problems[:3]}", file=out)
                timing = time_report(engine)
                seconds = timing.wall
                figures[f"report_s_{name.lower()}"] = seconds
                goal = REPORT_GOAL_S if name == "SQLite" else None
                print(line(f"ledger report, {name}, {built.postings:,} postings", f"{seconds * 1000:.0f} ms",
                           "< 0.5 s on SQLite" if goal else "none (SQLite's is 0.5 s)",
                           REPORT_GOAL_S / seconds if goal else None, seconds < REPORT_GOAL_S if goal else None,
                           f"this process's CPU: {timing.cpu * 1000:.0f} ms"), file=out)
                if cli and name == "SQLite":
                    whole, startup = time_cli(url, Path(tmp))
                    figures["cli_s_sqlite"] = whole
                    print(line("  the whole `selfpub ledger report` process", f"{whole * 1000:.0f} ms",
                               f"none; {startup * 1000:.0f} ms of it is `selfpub --help`", None, None), file=out)
                per_pair = throughput(engine, commits)
                rate = 1 / per_pair.wall
                figures[f"pairs_per_s_{name.lower()}"] = rate
                goal_ok = rate > THROUGHPUT_GOAL if name == "SQLite" else None
                print(line(f"reserve+commit, {name}, 1 writer", f"{rate:,.0f}/s",
                           "> 2,000/s on SQLite" if name == "SQLite" else "none (SQLite's is 2,000/s)",
                           rate / THROUGHPUT_GOAL if name == "SQLite" else None, goal_ok,
                           f"{per_pair.wall * 1e6:.0f} us a pair, {per_pair.cpu * 1e6:.0f} us of it this process's CPU"),
                      file=out)
            finally:
                engine.dispose()
                if schema:
                    with admin.begin() as conn:
                        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        if admin is not None:
            admin.dispose()
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}", file=out)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=5_000, help="reserve+commit pairs to time")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-cli", action="store_true", help="skip timing the selfpub process")
    args = parser.parse_args(argv)
    run(args.postings, args.commits, not args.no_postgres, cli=not args.no_cli)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
