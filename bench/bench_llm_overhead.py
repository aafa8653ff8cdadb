"""Metering overhead: MeteredLLM vs a raw AsyncOpenAI call against the fake OpenAI server.

    .venv/bin/python bench/bench_llm_overhead.py [--calls 300] [--mode server|mock] [--db sqlite|postgres]

Both clients hit the same instant fake (a real HTTP server on 127.0.0.1 by
default). The metered call adds: price check, prompt estimate, budget
headroom + reservation + commit (each a locked ledger transaction), one
call-log row and one OpenTelemetry span. Prints per-call overhead and the ratio.
With the embedded model at ~40 tokens/s, a 200-token reply takes ~5 s, so the
overhead is also printed as a share of such a call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai  # noqa: E402

from agents.llm.calllog import CallLog  # noqa: E402
from agents.llm import MeteredLLM  # noqa: E402
from config.db import make_engine  # noqa: E402
from config.settings import AgentSettings, AgentsSettings, BudgetSettings, ModelPrice  # noqa: E402
from ledger import Budget, Journal  # noqa: E402
from ledger.funding import deposit  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402

MODEL = "fake-model"
MSG = [{"role": "user", "content": "Write one sentence about otters."}]
EMBEDDED_CALL_SECONDS = 5.0  # ~200 tokens at ~40 tokens/s


async def timed(n: int, call) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t)
    return out


async def run(calls: int, mode: str, db_url: str) -> None:
    fake = FakeOpenAI(default="Otters hold hands while they sleep.", usage=(20, 9), models=(MODEL,))
    engine = make_engine(db_url)
    journal = Journal(engine)
    journal.migrate()
    CallLog(engine).migrate()
    deposit(journal, 1_000_000_000)
    budget = Budget(journal, BudgetSettings(daily_cap=1_000, per_cycle_cap=1_000))
    price = ModelPrice(input_per_million="2", output_per_million="6", provider="fake")

    async def measure(base_url: str, client: openai.AsyncOpenAI) -> None:
        agents = AgentsSettings(writer=AgentSettings(base_url=base_url, model=MODEL, max_calls_per_cycle=10**9, token_budget_per_cycle=10**12))
        llm = MeteredLLM(agents, {MODEL: price}, budget, {base_url: client}, log_to=CallLog(engine))

        async def raw() -> None:
            await client.chat.completions.create(model=MODEL, messages=MSG, max_tokens=512, temperature=0)

        async def metered() -> None:
            await llm.complete("writer", MSG, cycle_id="bench")

        await timed(20, raw)  # warm up both paths
        await timed(20, metered)
        r = await timed(calls, raw)
        m = await timed(calls, metered)
        raw_ms, met_ms = statistics.median(r) * 1000, statistics.median(m) * 1000
        over = met_ms - raw_ms
        print(f"fake server ({mode}), ledger on {engine.dialect.name}, {calls} calls each")
        print(f"  raw AsyncOpenAI call   median {raw_ms:7.2f} ms   ({calls / sum(r):7.0f} calls/s)")
        print(f"  MeteredLLM.complete    median {met_ms:7.2f} ms   ({calls / sum(m):7.0f} calls/s)")
        print(f"  overhead per call      {over:7.2f} ms   ratio metered/raw {met_ms / raw_ms:.2f}x")
        print(f"  share of a {EMBEDDED_CALL_SECONDS:g} s embedded-model call: {over / (EMBEDDED_CALL_SECONDS * 1000):.3%}")
        assert budget.open_reservations() == 0

    if mode == "mock":
        await measure("http://fake-llm.test/v1", fake.client("http://fake-llm.test/v1"))
    else:
        with fake.serve() as url:
            await measure(url, openai.AsyncOpenAI(base_url=url, api_key="sk-fake", max_retries=0))
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--mode", choices=("server", "mock"), default="server")
    ap.add_argument("--db", default=None, help="database URL (default: a temporary SQLite file)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.calls, args.mode, args.db or f"sqlite:///{tmp}/bench.db"))


if __name__ == "__main__":
    main()
