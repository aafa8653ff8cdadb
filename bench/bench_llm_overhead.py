"""Metering overhead: MeteredLLM vs the bare provider call (one request on the wire) against the fake OpenAI server.

    .venv/bin/python bench/bench_llm_overhead.py [--calls 300] [--mode server|mock] [--db sqlite|postgres]

Both paths hit the same instant fake (a real HTTP server on 127.0.0.1 by
default) through the same client, built by the provider layer
(agents.llm.provider: clients_for, OpenAIProvider.send): the bare path is one
provider send; the metered call adds the router, price check, prompt estimate,
budget headroom + reservation + commit (each a locked ledger transaction), one
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

from agents.llm.calllog import CallLog  # noqa: E402
from agents.llm import MeteredLLM, clients_for  # noqa: E402
from agents.llm.provider import OpenAIProvider, Request  # noqa: E402
from kernel.db import make_engine  # noqa: E402
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

    def agents_on(base_url: str) -> AgentsSettings:
        cfg = AgentSettings(base_url=base_url, model=MODEL, max_calls_per_cycle=10**9, token_budget_per_cycle=10**12)
        return AgentsSettings(orchestrator=cfg, research=cfg, writer=cfg, critic=cfg)

    async def measure(base_url: str, client: object) -> None:
        llm = MeteredLLM(agents_on(base_url), {MODEL: price}, budget, {base_url: client}, log_to=CallLog(engine))
        provider = OpenAIProvider(client)

        async def raw() -> None:
            await provider.send(Request(MODEL, MSG, 512))

        async def metered() -> None:
            await llm.complete("writer", MSG, cycle_id="bench")

        await timed(20, raw)  # warm up both paths
        await timed(20, metered)
        r = await timed(calls, raw)
        m = await timed(calls, metered)
        raw_ms, met_ms = statistics.median(r) * 1000, statistics.median(m) * 1000
        over = met_ms - raw_ms
        print(f"fake server ({mode}), ledger on {engine.dialect.name}, {calls} calls each")
        print(f"  bare provider send     median {raw_ms:7.2f} ms   ({calls / sum(r):7.0f} calls/s)")
        print(f"  MeteredLLM.complete    median {met_ms:7.2f} ms   ({calls / sum(m):7.0f} calls/s)")
        print(f"  overhead per call      {over:7.2f} ms   ratio metered/raw {met_ms / raw_ms:.2f}x")
        print(f"  share of a {EMBEDDED_CALL_SECONDS:g} s embedded-model call: {over / (EMBEDDED_CALL_SECONDS * 1000):.3%}")
        assert budget.open_reservations() == 0

    if mode == "mock":
        await measure("http://fake-llm.test/v1", fake.client("http://fake-llm.test/v1"))
    else:
        with fake.serve() as url:
            await measure(url, clients_for(agents_on(url))[url])
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
