"""Soak, CI size: a few hundred real cycles in this process (bench/bench_soak.py runs 2,000).

The daemon's cycle job (daemon.wiring.OrchestratorSlot.cycle: orchestrator, research over a real
feed socket, writer, critic, metered client, ledger, task store, outbox, local publisher on SQLite),
with fast stand-ins. After the warm-up: RSS grows < 10 %, open file descriptors stay flat, and the
database grows linearly with the posts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_soak import soak

pytestmark = pytest.mark.timeout(420)

CYCLES, WARMUP, EVERY = 280, 120, 20  # the warm-up covers the SQLite page caches filling (~100 cycles)


async def test_soak_memory_fds_and_database_stay_in_bounds(tmp_path: Path) -> None:
    result = await soak(tmp_path, CYCLES, warmup=WARMUP, every=EVERY, new_items=3, items_per_cycle=2)
    figures = "\n".join(result.report())
    print(figures)

    # every cycle did the whole job, or the figures below would measure an idle loop
    assert result.errors == [] and result.failed == 0, figures
    assert result.published == 2 * CYCLES, figures
    assert result.outbox_files == result.published
    assert result.samples[-1].posts == result.published
    assert result.llm_calls >= 3 * result.published  # research, write, critique per post

    # memory: peak RSS after the warm-up at most 10 % over RSS at its end
    assert result.rss_growth_pct < 10.0, figures
    # file descriptors: flat (what the warm-up opened is reused, nothing leaks per cycle)
    assert result.fds_end <= result.fds_warmup, figures
    assert result.fds_max_after <= result.fds_warmup + 2, figures  # a connection being replaced at most

    # database: linear in posts (straight line fits; the second half costs what the first did per post)
    slope, _, r2 = result.fit()
    first, second = result.halves()
    assert r2 > 0.995, figures
    assert 0.8 < second / first < 1.25, figures
    assert 1_000 < slope < 100_000, figures  # a post's rows (task, ledger, call log, outbox, seen items) in bytes
