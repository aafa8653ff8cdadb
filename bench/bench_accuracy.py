"""Cost accounting accuracy: ledger spend vs the usage the server reported, priced.

    .venv/bin/python bench/bench_accuracy.py [--cycles 30] [--items-per-cycle 2] [--fault-every 7]

Many cycles of the real daemon wiring (build_deps: MeteredLLM, budget, ledger
on SQLite) against the counting OpenAI-compatible server on 127.0.0.1, which
reports usage for every answer. Every `--fault-every`-th request fails with
HTTP 500 that reports the prompt tokens it consumed (Retry-After: 0): the
ledger must charge those too. The server's own record of what it reported is
priced independently here (per call, rounded up to the micro-credit, integers
only) and compared with what the ledger holds under expenses:compute:* and
liabilities:provider:*. Goal: difference exactly 0.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.side_by_side.peers import FeedServer  # noqa: E402
from bench.side_by_side.selfpub_side import PRICE, SelfpubRun, selfpub_settings, synthetic_items  # noqa: E402
from bench.side_by_side.server import CountingServer  # noqa: E402

PER_MILLION = 1_000_000


@dataclass
class Accuracy:
    """The figures of one run (money in ucr)."""

    cycles: int
    calls: int
    failed_calls: int
    published: int
    server_priced: int
    ledger_spend: int
    provider_liability: int
    open_reservations: int
    ledger_problems: list[str]

    @property
    def difference(self) -> int:
        return self.ledger_spend - self.server_priced


def price_call(prompt_tokens: int, completion_tokens: int) -> int:
    """What the provider's reported usage of one call costs: ceil over the call, integers only."""
    total = prompt_tokens * PRICE.input_per_million + completion_tokens * PRICE.output_per_million
    return -(-total // PER_MILLION)


async def measure(cycles: int, items_per_cycle: int, fault_every: int, words: int = 300) -> Accuracy:
    """Run the cycles and compare the ledger with the server's reported usage."""
    server = CountingServer(words=words, fault_every=fault_every)
    feed = FeedServer()
    published = 0
    with server.serve() as llm_url, feed.serve() as feed_url, tempfile.TemporaryDirectory() as tmp:
        run = SelfpubRun(selfpub_settings(Path(tmp), llm_url, f"{feed_url}/feed.xml", items_per_cycle=items_per_cycle))
        try:
            for c in range(cycles):
                feed.items = synthetic_items(items_per_cycle, salt=f"c{c}")
                published += (await run.cycle()).published
            balances = run.journal.balances()
            result = Accuracy(
                cycles=cycles,
                calls=len(server.served),
                failed_calls=sum(s.status != 200 for s in server.served),
                published=published,
                server_priced=sum(price_call(s.prompt_tokens, s.completion_tokens) for s in server.served),
                ledger_spend=sum(v for k, v in balances.items() if k.startswith("expenses:compute:")),
                provider_liability=-sum(v for k, v in balances.items() if k.startswith("liabilities:provider:")),
                open_reservations=run.budget.open_reservations(),
                ledger_problems=run.journal.verify(),
            )
        finally:
            await run.aclose()
    return result


def main() -> int:
    """Run and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=30)
    ap.add_argument("--items-per-cycle", type=int, default=2)
    ap.add_argument("--fault-every", type=int, default=7, help="every n-th request fails with a 500 reporting usage (0: none)")
    args = ap.parse_args()
    r = asyncio.run(measure(args.cycles, args.items_per_cycle, args.fault_every))
    print(f"{r.cycles} cycles, {r.published} articles published, {r.calls} LLM requests "
          f"({r.failed_calls} answered HTTP 500 with usage)")
    print(f"server-reported usage, priced per call: {r.server_priced} ucr")
    print(f"ledger expenses:compute:*:             {r.ledger_spend} ucr")
    print(f"ledger liabilities:provider:*:         {r.provider_liability} ucr")
    print(f"difference (ledger - server):          {r.difference} ucr (goal exactly 0)")
    print(f"open reservations {r.open_reservations}; ledger problems: {r.ledger_problems or 'none'}")
    return 0 if r.difference == 0 and r.provider_liability == r.server_priced and not r.ledger_problems else 1


if __name__ == "__main__":
    sys.exit(main())
