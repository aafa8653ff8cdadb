"""Ledger fixtures: a migrated journal and a budget with an injectable clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine

from config.settings import BudgetSettings
from ledger import Budget, Journal

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


class Clock:
    """A settable clock for budgets: `clock.now`, `clock.advance(seconds=...)`."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def journal(engine: Engine) -> Journal:
    """A migrated journal on SQLite or the real PostgreSQL."""
    j = Journal(engine)
    j.migrate()
    return j


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_budget(journal: Journal, clock: Clock) -> Callable[..., Budget]:
    """Build a Budget on the test journal; keyword arguments are BudgetSettings fields (credits)."""

    def make(persona: str = "default", **settings: object) -> Budget:
        return Budget(journal, BudgetSettings(**settings), persona=persona, clock=clock)

    return make
