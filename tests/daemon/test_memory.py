"""The heap's free pages go back to the OS after each cycle (daemon/memory.py)."""

from __future__ import annotations

import platform
import threading
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from daemon import wiring
from daemon.memory import trim_heap
from agents.cycle import CycleContext

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@glibc
def test_trim_returns_the_free_pages_a_fragmented_heap_keeps() -> None:
    # 64 MiB of 1 KiB buffers (above pymalloc's 512 bytes, so each is a glibc chunk), then free 15 of
    # every 16: the survivors pin the heap's top, so free() alone returns nothing to the OS.
    blocks = [bytearray(1024) for _ in range(64 * 1024)]
    survivors = blocks[::16]
    del blocks
    before = rss_kib()
    assert trim_heap() is True
    after = rss_kib()
    assert before - after > 20 * 1024, f"RSS {before} KiB -> {after} KiB after trim_heap"
    assert len(survivors) == 4096 and all(len(b) == 1024 for b in survivors)  # live data untouched


class _Orchestrator:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    async def run_cycle(self, ctx: CycleContext) -> str:
        if self.fail:
            raise RuntimeError("cycle failed")
        return f"report at {ctx.now:%H:%M}"


def _slot(fail: bool) -> wiring.OrchestratorSlot:
    slot = wiring.OrchestratorSlot.__new__(wiring.OrchestratorSlot)  # the job only, without building clients
    slot.current = SimpleNamespace(orchestrator=_Orchestrator(fail))
    slot._users = {}
    return slot


@pytest.mark.parametrize("fail", [False, True])
async def test_the_cycle_job_trims_the_heap_after_every_cycle_failed_or_not(monkeypatch, fail: bool) -> None:
    trims: list[int] = []
    monkeypatch.setattr(wiring, "trim_heap", lambda: trims.append(1) or True)
    ctx = CycleContext("c1", datetime(2026, 11, 21, 9, 30, tzinfo=timezone.utc), threading.Event())
    if fail:
        with pytest.raises(RuntimeError, match="cycle failed"):
            await _slot(fail).cycle(ctx)
    else:
        assert await _slot(fail).cycle(ctx) == "report at 09:30"
    assert trims == [1]
