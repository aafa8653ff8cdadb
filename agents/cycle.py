"""One cycle's identity and its one gate: made by the caller, read by the orchestrator.

    caller (daemon job, `selfpub cycle`, the demo)
      ctx  = CycleContext.start(now, deadline=..., stop=...)   one id, used by every row the cycle writes
      pause = Gate(budget, pause_reason).check()                Budget.evaluate() with the wallet's reason
      paused -> no cycle; else Orchestrator.run_cycle(ctx)      (daemon.cycle.admit adds the cycle lock)

The gate runs Budget.evaluate() every time, also while paused: evaluate()
expires stale holds and re-reads the balance, so a deposit or a tip resumes
the loop at the next gate. The wallet's pause reason (stale chain data) is
passed in as a callable by daemon/, because agents/ may not import wallet/;
with it set, the budget records a forced pause whatever the balance, and
without it a forced pause lifts.

The stop flag and the deadline are polled by the orchestrator between steps:
a SIGTERM (the flag) or a cycle that outlived its deadline stops at the next
step boundary, every step before it stored.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ledger.budget import Budget, PauseState

STOP_REQUESTED = "stop requested"
DEADLINE_PASSED = "cycle deadline passed"


def new_cycle_id(now: datetime) -> str:
    """A cycle id that sorts by time and is unique across processes."""
    return f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class CycleContext:
    """One cycle: its id, when it started, a stop flag the caller may set, and an optional deadline."""

    cycle_id: str
    now: datetime
    stop: threading.Event = field(default_factory=threading.Event)
    deadline: datetime | None = None

    @classmethod
    def start(cls, now: datetime | None = None, *, deadline: datetime | None = None,
              stop: threading.Event | None = None) -> CycleContext:
        """A new cycle starting `now` (default: the wall clock)."""
        now = now or datetime.now(timezone.utc)
        return cls(new_cycle_id(now), now, stop if stop is not None else threading.Event(), deadline)

    def halt_reason(self, now: datetime, *, deadline: bool = True) -> str | None:
        """Why no further step may start now (None: go on); the deadline counts only when asked."""
        if self.stop.is_set():
            return STOP_REQUESTED
        if deadline and self.deadline is not None and now >= self.deadline:
            return DEADLINE_PASSED
        return None


class Gate:
    """The one pause gate: Budget.evaluate() with the wallet's pause reason (stale chain data), every time."""

    def __init__(self, budget: Budget, pause_reason: Callable[[], str | None] | None = None):
        self.budget = budget
        self.pause_reason = pause_reason

    def check(self) -> PauseState:
        """Evaluate the pause now (expiring stale holds, re-reading the balance) and return it."""
        extra = self.pause_reason() if self.pause_reason is not None else None
        return self.budget.evaluate(extra_reason=extra or None)


__all__ = ["DEADLINE_PASSED", "STOP_REQUESTED", "CycleContext", "Gate", "new_cycle_id"]
