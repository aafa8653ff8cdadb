"""bench/bench_paid_reads.py at tiny size, so it cannot rot: a paid read settles on chain and costs more than a free one."""

from __future__ import annotations

from bench.bench_paid_reads import measure
from tests.peers.anvil import Anvil


def test_the_paid_reads_bench_measures_a_settled_read(x402_node: Anvil) -> None:
    f = measure(x402_node, reads=2, article_cost=120_000)
    assert f["reads"] == 2 and f["ratio"] > 1.0
    assert 40_000 < f["gas_per_read"] < 200_000  # one transferWithAuthorization
    assert f["break_even_reads"] == 3  # 0.12 credits at 0.05 a read
