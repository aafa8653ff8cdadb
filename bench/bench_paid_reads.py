"""Paid reads over x402: what a paid read costs next to a free read of the same article, and what it earns.

    .venv/bin/python bench/bench_paid_reads.py [--reads 20] [--article-cost 0.002]

On anvil (npm @foundry-rs/anvil) with CreditToken3009 and the x402 SDK's own facilitator, the paywall
(payments/) in front of a one-article site, in-process (ASGI): the same Markdown read N times free and N
times paid by the SDK's paying client (402, sign, retry, verify, settle on chain, 200). Prints

    paid/free       mean latency of a paid read over a free read (a ratio)
    gas per read    gas the facilitator's transferWithAuthorization used (and its cost at the node's price)
    break-even      reads of one article needed to pay for writing it: ceil(article cost / price_article)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
from x402.http.clients.httpx import x402AsyncTransport  # noqa: E402

from config.settings import Settings  # noqa: E402
from kernel.db import make_engine  # noqa: E402
from kernel.money import format_credits, parse_credits  # noqa: E402
from payments.paywall import Paywall  # noqa: E402
from payments.x402 import local_facilitator, read_domain, resolve_terms, resource_server  # noqa: E402
from tests.peers.anvil import Anvil, start_anvil, stop_anvil  # noqa: E402
from tests.peers.x402 import deploy_x402  # noqa: E402
from wallet import migrate  # noqa: E402
from wallet.reads import PaidReads  # noqa: E402

ARTICLE = "# An article\n\n" + "A paragraph of the article, with its sources. " * 120


async def _measure(node: Anvil, reads: int, article_cost: int, db: Path) -> dict:
    peer = deploy_x402(node)
    settings = Settings.model_validate({
        "wallet": {"mode": "evm", "rpc_url": node.url, "chain_id": node.chain_id, "token_address": peer.token,
                   "address": peer.agent},
        "x402": {"enabled": True},
    })
    terms = resolve_terms(settings.x402, settings.wallet, domain=read_domain(peer.w3, peer.token))
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    facilitator = local_facilitator(node.url, peer.facilitator_key, terms.network)
    paywall = Paywall(resource_server(facilitator, terms.network), terms, PaidReads(engine))

    async def article(_request) -> PlainTextResponse:  # noqa: ANN001
        return PlainTextResponse(ARTICLE, media_type="text/markdown")

    app = Starlette(routes=[Route("/a/{slug}.md", article), Route("/free/{slug}.md", article)],
                    middleware=paywall.middleware())
    free, paid = [], []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://site") as plain, \
            httpx.AsyncClient(transport=x402AsyncTransport(peer.paying_client(), httpx.ASGITransport(app)),
                              base_url="http://site") as paying:
        for i in range(reads):
            t0 = time.perf_counter()
            resp = await plain.get(f"/free/article-{i}.md")
            free.append(time.perf_counter() - t0)
            assert resp.status_code == 200
            t0 = time.perf_counter()
            resp = await paying.get(f"/a/article-{i}.md")
            paid.append(time.perf_counter() - t0)
            assert resp.status_code == 200 and resp.text == ARTICLE, resp.status_code
    gas = [int(peer.w3.eth.get_transaction_receipt(r["tx_hash"])["gasUsed"]) for r in PaidReads(engine).rows()]
    gas_price = int(peer.w3.eth.gas_price)
    engine.dispose()
    price = terms.prices["article"]
    return {
        "reads": reads,
        "free_ms": statistics.mean(free) * 1000,
        "paid_ms": statistics.mean(paid) * 1000,
        "ratio": statistics.mean(paid) / statistics.mean(free),
        "gas_per_read": statistics.mean(gas),
        "gas_wei_per_read": statistics.mean(gas) * gas_price,
        "price_ucr": price,
        "article_cost_ucr": article_cost,
        "break_even_reads": math.ceil(article_cost / price) if price else None,
    }


def measure(node: Anvil, reads: int = 20, article_cost: int = 2_000) -> dict:
    """The figures for `reads` paid and free reads on `node` (a fresh token and facilitator)."""
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_measure(node, reads, article_cost, Path(tmp) / "bench.db"))


def main() -> None:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--reads", type=int, default=20)
    ap.add_argument("--article-cost", default="0.002", help="credits one article costs to write (default: "
                    "bench_agents' 1,656 tokens per post at the embedded model's price, rounded up)")
    args = ap.parse_args()
    node = start_anvil()
    try:
        f = measure(node, args.reads, parse_credits(args.article_cost))
    finally:
        stop_anvil(node)
    print(f"paid read vs free read of the same article ({f['reads']} each, in-process, anvil):")
    print(f"  free {f['free_ms']:.1f} ms, paid {f['paid_ms']:.1f} ms: paid/free = {f['ratio']:.1f}x")
    print(f"  gas per paid read: {f['gas_per_read']:.0f} gas ({f['gas_wei_per_read']:.0f} wei at the node's price),"
          " paid by the facilitator")
    be = f["break_even_reads"]
    print(f"  break-even: {be} read(s) at {format_credits(f['price_ucr'])} credits pay for an article costing "
          f"{format_credits(f['article_cost_ucr'])} credits")


if __name__ == "__main__":
    main()
