"""Worker processes for the concurrency test (spawned: importable, no pytest).

Each worker hammers reserve+commit against one budget, one day after
another: on each day until the budget refuses for good (the daily cap on
the first day, the money on the second), and reports every reservation it
committed.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from kernel.db import make_engine
from config.settings import BudgetSettings
from ledger import Budget, BudgetExceeded, Journal

# Fixed days: no real midnight can split a daily counter mid-test.
DAYS = (datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc), datetime(2026, 6, 2, 12, 0, tzinfo=timezone.utc))
REFUSED_FOR_GOOD = 25  # refusals in a row (others' open holds refuse us only for a moment)

_start = None  # a multiprocessing Barrier shared with the test, set by init() in each worker
_next_day = None  # a Barrier the workers meet at before the clock moves to the next day


def init(start, next_day) -> None:  # noqa: ANN001
    """ProcessPoolExecutor initializer: keep the barriers every worker (and the test) meets at."""
    global _start, _next_day
    _start, _next_day = start, next_day


class DayClock:
    """The budget's clock: noon of the current test day."""

    def __init__(self) -> None:
        self.now = DAYS[0]

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class WorkerReport:
    worker: int
    committed: tuple[tuple[int, int, str], ...]  # (reservation id, actual ucr, day)
    refusals: dict[str, int]
    min_available: int
    errors: tuple[str, ...]


def hammer(worker: int, url: str, settings: dict[str, str], hold: int, deadline_s: float) -> WorkerReport:
    """Reserve `hold`, commit a random actual <= hold, repeat; on each day until refused for good."""
    engine = make_engine(url)
    clock = DayClock()
    budget = Budget(Journal(engine), BudgetSettings(**settings), clock=clock)
    rng = random.Random(worker)
    committed: list[tuple[int, int, str]] = []
    refusals: dict[str, int] = {}
    errors: list[str] = []
    min_available = budget.available()
    _start.wait()
    stop_at = time.monotonic() + deadline_s
    for n, day in enumerate(DAYS):
        if n:
            # Every worker leaves the day before any clock moves on: a worker a day ahead would expire the
            # others' holds while their calls are still running (a 24 h clock skew no real machine has).
            _next_day.wait(timeout=120)
        clock.now = day
        refused_in_a_row = 0
        while time.monotonic() < stop_at and refused_in_a_row < REFUSED_FOR_GOOD and not errors:
            try:
                h = budget.reserve(f"agent{worker % 4}", hold, provider="embedded", cycle_id=f"cycle{worker % 2}")
                actual = rng.randint(1, hold)
                budget.commit(h, actual)
            except BudgetExceeded as exc:
                refusals[exc.limit] = refusals.get(exc.limit, 0) + 1
                refused_in_a_row += 1
                time.sleep(0.002)
                continue
            except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
                errors.append(repr(exc))
                break
            refused_in_a_row = 0
            committed.append((h.id, actual, h.day))
            min_available = min(min_available, budget.available())
    engine.dispose()
    return WorkerReport(worker, tuple(committed), refusals, min_available, tuple(errors))
