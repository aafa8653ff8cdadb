"""Worker processes for the concurrency test (spawned: importable, no pytest).

Each worker hammers reserve+commit against one budget until the budget says
no for good, and reports every reservation it committed.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from config.db import make_engine
from config.settings import BudgetSettings
from ledger import Budget, BudgetExceeded, Journal

FIXED_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)  # no day boundary mid-test


_start = None  # a multiprocessing Barrier shared with the test, set by init() in each worker


def init(start) -> None:  # noqa: ANN001
    """ProcessPoolExecutor initializer: keep the barrier every worker (and the test) meets at."""
    global _start
    _start = start


def fixed_clock() -> datetime:
    return FIXED_NOW


@dataclass(frozen=True)
class WorkerReport:
    worker: int
    committed: tuple[tuple[int, int], ...]  # (reservation id, actual ucr)
    refusals: dict[str, int]
    min_available: int
    errors: tuple[str, ...]


def hammer(
    worker: int,
    url: str,
    settings: dict[str, str],
    hold: int,
    deadline_s: float,
) -> WorkerReport:
    """Reserve `hold`, commit a random actual <= hold, repeat until refused for good or the deadline."""
    engine = make_engine(url)
    budget = Budget(Journal(engine), BudgetSettings(**settings), clock=fixed_clock)
    rng = random.Random(worker)
    committed: list[tuple[int, int]] = []
    refusals: dict[str, int] = {}
    errors: list[str] = []
    min_available = budget.available()
    _start.wait()
    stop_at = time.monotonic() + deadline_s
    refused_in_a_row = 0
    while time.monotonic() < stop_at:
        try:
            h = budget.reserve(f"agent{worker % 4}", hold, provider="embedded", cycle_id=f"cycle{worker % 2}")
        except BudgetExceeded as exc:
            refusals[exc.limit] = refusals.get(exc.limit, 0) + 1
            refused_in_a_row += 1
            # Others' open holds can refuse us for a moment; many refusals in a row mean the money is gone.
            if refused_in_a_row >= 25:
                break
            time.sleep(0.002)
            continue
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            errors.append(repr(exc))
            break
        refused_in_a_row = 0
        actual = rng.randint(1, hold)
        budget.commit(h, actual)
        committed.append((h.id, actual))
        min_available = min(min_available, budget.available())
    engine.dispose()
    return WorkerReport(worker, tuple(committed), refusals, min_available, tuple(errors))
