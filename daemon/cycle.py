"""The one way into a cycle, for the daemon's cycle job, `selfpub cycle` and the demo.

    admit(gate, lock)
      gate.check()      Budget.evaluate() with the wallet's pause reason, every time (also while
                        paused: stale holds expire, a deposit or a tip resumes here)
                        paused -> Admission(PAUSED, reason): no cycle
      lock.acquire()    the persona's cycle lock (daemon.lock); held elsewhere ->
                        Admission(LOCKED): another process runs this persona's cycle now
      admitted          run the cycle, then lock.release()

    run_admitted(gate, lock, cycle, ctx)    admit, run cycle(ctx), release: for callers that
                                            do not schedule (the CLI, the demo)

So no path runs a cycle through a pause the daemon's gate would keep, and no
two processes run a persona's cycle at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from agents.cycle import CycleContext, Gate
from daemon.lock import CycleLock
from ledger.budget import PauseState

T = TypeVar("T")

ADMITTED, PAUSED, LOCKED = "admitted", "paused", "locked"


@dataclass(frozen=True)
class Admission:
    """The gate's and the lock's answer: admitted, or refused (paused / locked) with the reason."""

    outcome: str
    pause: PauseState
    reason: str = ""

    @property
    def admitted(self) -> bool:
        """True when the cycle may run (the lock is then held by the caller)."""
        return self.outcome == ADMITTED


def admit(gate: Gate, lock: CycleLock) -> Admission:
    """Gate, then the persona's cycle lock (blocking I/O: call it in a thread from async code)."""
    pause = gate.check()
    if pause.paused:
        return Admission(PAUSED, pause, pause.reason)
    if not lock.acquire():
        return Admission(LOCKED, pause, f"another process runs persona {lock.persona!r}'s cycle now")
    return Admission(ADMITTED, pause)


@dataclass(frozen=True)
class Admitted(Generic[T]):
    """What run_admitted did: the admission, and the cycle's result when it ran."""

    admission: Admission
    result: T | None = None


async def run_admitted(
    gate: Gate, lock: CycleLock, cycle: Callable[[CycleContext], Awaitable[T]], ctx: CycleContext
) -> Admitted[T]:
    """Admit, run cycle(ctx) under the lock, release; a refusal runs nothing."""
    admission = await asyncio.to_thread(admit, gate, lock)
    if not admission.admitted:
        return Admitted(admission)
    try:
        return Admitted(admission, await cycle(ctx))
    finally:
        await asyncio.shield(asyncio.to_thread(lock.release))


__all__ = ["ADMITTED", "LOCKED", "PAUSED", "Admission", "Admitted", "admit", "run_admitted"]
