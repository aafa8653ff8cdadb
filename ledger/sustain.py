"""The sustain rule's arithmetic: income / cost over a trailing window, and the tier it sets.

    state = sustain_state(journal, settings.sustain, now=now)
      income   every income:* posting in [now - window_hours, now]: tips, paid reads, engagement
               accrued as income (reversals net out)
      cost     every expenses:compute:* posting in the same window (gas is booked in WEI, another
               commodity, so it is not part of a credit ratio)
      decide(income, cost, expand_at)
          cost == 0                          normal  (too little history to judge; never expand)
          income < cost                      conserve (ratio below 1.0)
          income >= expand_at * cost         expand
          otherwise                          normal

Integers only: amounts in ucr, the ratio as an integer per mille (floored, for display), and the
tier from exact integer comparisons (income * 1000 against expand_at * cost), never a float.
The runway pause below budget.min_balance is the budget's (ledger/budget.py), unchanged by this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ledger.accounts import is_expense, is_income
from ledger.journal import Journal
from ledger.query import IS_COMPUTE, IS_INCOME, grouped
from ledger.reads import JUST_AFTER

if TYPE_CHECKING:
    from config.settings import SustainSettings  # a type only: read-only commands may pass config.snapshot.Frozen

CONSERVE, NORMAL, EXPAND = "conserve", "normal", "expand"
TIERS = (CONSERVE, NORMAL, EXPAND)
BREAK_EVEN = 1000  # per mille: income == cost


def format_ratio(per_mille: int) -> str:
    """A per-mille ratio as a decimal with two places (1234 -> "1.23"), floored like the ratio itself."""
    return f"{per_mille // 1000}.{per_mille % 1000 // 10:02d}"


def _credits(ucr: int) -> str:
    """Credits with two decimals for a one-line reason (the exact figures are in the state's ucr fields)."""
    whole, frac = divmod(ucr, 1_000_000)
    return f"{whole}.{frac // 10_000:02d} cr"


@dataclass(frozen=True)
class SustainState:
    """The tier in force and why: income and cost (ucr) over the window and their ratio (per mille)."""

    tier: str
    income: int
    cost: int
    ratio: int | None  # income * 1000 // cost; None when nothing was spent in the window
    window_hours: int
    expand_at: int  # per mille
    reason: str
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every amount an integer (ucr), the ratio per mille."""
        return {"enabled": self.enabled, "tier": self.tier, "income": self.income, "cost": self.cost,
                "ratio_per_mille": self.ratio, "window_hours": self.window_hours,
                "expand_at_per_mille": self.expand_at, "reason": self.reason}


def decide(income: int, cost: int, *, expand_at: int, window_hours: int, enabled: bool = True) -> SustainState:
    """The tier for `income` and `cost` (ucr) over the window; see the module docstring."""
    span = f"over {window_hours} h"
    money = f"income {_credits(income)} / cost {_credits(cost)} {span}"
    bar = format_ratio(expand_at)
    if cost <= 0:
        ratio = None
        tier = NORMAL
        why = (f"normal: no compute cost {span} yet (income {_credits(income)}): "
               "too little history to judge, so neither conserve nor expand")
    else:
        ratio = income * 1000 // cost
        if income * 1000 < BREAK_EVEN * cost:
            tier, why = CONSERVE, f"conserve: {money} = {format_ratio(ratio)} < 1.0"
        elif income * 1000 >= expand_at * cost:
            tier, why = EXPAND, f"expand: {money} = {format_ratio(ratio)} >= {bar}"
        else:
            tier, why = NORMAL, f"normal: {money} = {format_ratio(ratio)}, between 1.0 and {bar}"
    if not enabled:
        return SustainState(NORMAL, income, cost, ratio, window_hours, expand_at,
                            f"normal: the sustain rule is off ([sustain] enabled = false); {why}", enabled=False)
    return SustainState(tier, income, cost, ratio, window_hours, expand_at, why)


def income_cost(journal: Journal, *, since: datetime, until: datetime, conn: Any = None) -> tuple[int, int]:  # noqa: ANN401
    """(income, compute cost) in ucr posted with since <= time < until."""
    found = grouped(journal, since=since, until=until, by=("account",), where=f"({IS_INCOME} OR {IS_COMPUTE})",
                    conn=conn)
    income = -sum(v for (a,), v in found.items() if is_income(a))
    cost = sum(v for (a,), v in found.items() if is_expense(a))
    return income, cost


def sustain_state(journal: Journal, settings: SustainSettings, *, now: datetime, conn: Any = None) -> SustainState:  # noqa: ANN401
    """The tier in force at `now`: the window up to and including `now`, read from the ledger."""
    since = now - timedelta(hours=settings.window_hours)
    income, cost = income_cost(journal, since=since, until=now + JUST_AFTER, conn=conn)
    return decide(income, cost, expand_at=settings.expand_at, window_hours=settings.window_hours,
                  enabled=settings.enabled)


__all__ = [
    "BREAK_EVEN", "CONSERVE", "EXPAND", "NORMAL", "TIERS", "SustainState", "decide", "format_ratio", "income_cost",
    "sustain_state",
]
