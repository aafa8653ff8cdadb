"""A stand-in for the orchestrator's cycle, for the daemon's process tests (moved here from daemon/wiring.py).

    tests/daemon/run_daemon.py --fake-cycle-seconds S
        └─ build_service(..., jobs=fake_jobs(S, cost))  ->  Jobs(cycle=FakeCycle(...))

It keeps the orchestrator's storage contract: a task advances through steps and every step is
persisted before the next, so an abandoned cycle resumes its task at the next start. Every
cycle's start and end are appended to <state_dir>/fake-cycles.jsonl, so tests can check for
overlaps. Optionally it spends `cost` ucr per cycle through a budget reservation. A file
<state_dir>/fake-cycle-bug makes the cycle raise a bug (an unclassified error quoting the
file's text), so tests can watch the crash path.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from agents.cycle import CycleContext
from config.settings import Settings
from daemon.service import Jobs
from ledger.budget import Budget
from ledger.journal import Journal


class FakeCycle:
    """A slow cycle of four persisted steps, optionally spending `cost` ucr through the budget."""

    STEPS = ("researched", "drafted", "approved", "published")

    def __init__(self, state_dir: Path, seconds: float, budget: Budget, cost: int = 0):
        self.task_file = Path(state_dir) / "fake-task.json"
        self.log_file = Path(state_dir) / "fake-cycles.jsonl"
        self.bug_file = Path(state_dir) / "fake-cycle-bug"
        self.seconds = seconds
        self.budget = budget
        self.cost = cost

    def _load(self) -> dict:
        try:
            task = json.loads(self.task_file.read_text())
        except (OSError, ValueError):
            task = None
        if not task or task["step"] >= len(self.STEPS):
            task = {"task": uuid.uuid4().hex[:12], "step": 0}
        return task

    def _save(self, task: dict) -> None:
        tmp = self.task_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(task))
        os.replace(tmp, self.task_file)

    def _append(self, record: dict) -> None:
        with self.log_file.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    async def __call__(self, ctx: CycleContext) -> dict:
        start = time.time()
        if self.bug_file.exists():
            raise _FakeBug(f"fake bug while handling {self.bug_file.read_text()!r}")
        task = self._load()
        first_step = task["step"]
        self._append({"event": "start", "pid": os.getpid(), "t": start, "task": task["task"], "step": first_step})
        if self.cost:
            hold = await asyncio.to_thread(self.budget.reserve, "writer", self.cost, model="fake", provider="fake",
                                           cycle_id=ctx.cycle_id, task_id=task["task"])
            await asyncio.to_thread(self.budget.commit, hold, self.cost)
        pause = self.seconds / len(self.STEPS)
        while task["step"] < len(self.STEPS):
            await asyncio.sleep(pause)
            task["step"] += 1
            self._save(task)
        end = time.time()
        self._append({"event": "end", "pid": os.getpid(), "t": end, "start": start, "task": task["task"],
                      "from_step": first_step})
        return task


def fake_jobs(seconds: float, cost: int = 0) -> Callable[[Settings, Journal, Budget], Jobs]:
    """A jobs factory for build_service: the fake cycle only (no wallet jobs)."""

    def make(settings: Settings, journal: Journal, budget: Budget) -> Jobs:
        return Jobs(cycle=FakeCycle(settings.state_dir, seconds, budget, cost))

    return make


class _FakeBug(Exception):
    """An error no policy classifies, i.e. a bug."""
