"""The sustain rule's arithmetic (ledger/sustain.py): income / cost over the window on SQLite and PostgreSQL,
the tier as a property, and the ledger report showing it."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from hypothesis import given, settings as hsettings, strategies as st
from rich.console import Console

from config.settings import SustainSettings
from ledger import TIPS, WALLET, Entry, Journal, compute_account, engagement_account, provider_account
from ledger.accounts import DUST, GAS, NATIVE, RECEIVABLE_ENGAGEMENT
from ledger.budget import Budget
from ledger.funding import deposit
from ledger.models import COMMODITY
from ledger.reports import build_report, render_table
from ledger.sustain import CONSERVE, EXPAND, NORMAL, TIERS, decide, income_cost, sustain_state
from tests.ledger.conftest import Clock

CR = 1_000_000
ON = SustainSettings(enabled=True)  # the rule is opted into (off by default)
RANK = {t: i for i, t in enumerate(TIERS)}  # conserve < normal < expand


def _compute(journal: Journal, key: str, agent: str, amount: int, when: datetime) -> None:
    journal.post("compute", [Entry(compute_account(agent), amount), Entry(provider_account("x"), -amount)],
                 idempotency_key=key, time=when, model="m")


def _tip(journal: Journal, key: str, amount: int, when: datetime) -> int:
    return journal.post("tip", [Entry(WALLET, amount), Entry(TIPS, -amount)], idempotency_key=key, time=when).txn_id


def _slow_sums(journal: Journal, since: datetime, until: datetime) -> tuple[int, int]:
    """Income and compute cost summed posting by posting in Python: what the rollup read must equal."""
    income = cost = 0
    with journal.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT t.time, p.account, p.amount, p.commodity FROM ledger_txn t JOIN ledger_posting p ON p.txn_id = t.id"
        ).all()
    for when, account, amount, commodity in rows:
        when = journal.sql.parse_ts(when)
        if commodity != COMMODITY or not since <= when < until:
            continue
        if account.startswith("income:"):
            income -= int(amount)
        elif account.startswith("expenses:compute:"):
            cost += int(amount)
    return income, cost


def test_income_and_cost_over_the_window_on_a_real_ledger(journal: Journal, clock: Clock) -> None:
    """SQLite and PostgreSQL: every income:* counts, only compute is cost, only inside the window."""
    now = clock.now  # 12:00: a 72 h window spans whole days (from the rollup) and two partial days
    deposit(journal, 100 * CR, idempotency_key="fund", time=now - timedelta(days=10))
    # Outside the window, on both sides.
    _tip(journal, "old-tip", 50 * CR, now - timedelta(hours=72, seconds=1))
    _compute(journal, "old-cpu", "writer", 9 * CR, now - timedelta(days=4))
    _tip(journal, "future-tip", 7 * CR, now + timedelta(seconds=1))
    # Inside: tips, a paid read, engagement accrued as income, and a tip reversed (reorg) that nets out.
    _tip(journal, "tip-1", 400_000, now - timedelta(hours=72))  # the window's first instant counts
    _tip(journal, "tip-2", 250_000, now - timedelta(hours=30))
    journal.post("read", [Entry(WALLET, 120_000), Entry("income:reads:article", -120_000)],
                 idempotency_key="read-1", time=now - timedelta(hours=26))
    journal.post("engagement", [Entry(RECEIVABLE_ENGAGEMENT, 30_000), Entry(engagement_account("devto"), -30_000)],
                 idempotency_key="eng-1", time=now - timedelta(hours=2))
    gone = _tip(journal, "tip-reorged", 5 * CR, now - timedelta(hours=3))
    journal.reverse(gone, idempotency_key="reorg:tip-reorged", memo="reorged out", time=now - timedelta(hours=1))
    _compute(journal, "cpu-1", "writer", 700_000, now - timedelta(hours=50))
    _compute(journal, "cpu-2", "critic", 500_000, now - timedelta(hours=1))
    _compute(journal, "cpu-now", "research", 1_000, now)  # `now` itself counts
    # Not compute: gas is in WEI, dust is a rounding, neither is a credit of compute.
    journal.post("gas", [Entry(GAS, 21_000, commodity="WEI"), Entry(NATIVE, -21_000, commodity="WEI")],
                 idempotency_key="gas-1", time=now - timedelta(hours=1))
    journal.post("dust", [Entry(DUST, 3), Entry(WALLET, -3)], idempotency_key="dust-1", time=now - timedelta(hours=1))

    state = sustain_state(journal, ON.model_copy(update={"window_hours": 72}), now=now)
    income, cost = 400_000 + 250_000 + 120_000 + 30_000, 700_000 + 500_000 + 1_000
    assert (state.income, state.cost) == (income, cost)
    assert (state.income, state.cost) == _slow_sums(journal, now - timedelta(hours=72), now + timedelta(microseconds=1))
    assert state.ratio == income * 1000 // cost == 666
    assert state.tier == CONSERVE
    assert state.reason == "conserve: income 0.80 cr / cost 1.20 cr over 72 h = 0.66 < 1.0"

    # The default 24 h window keeps only the last day: the engagement, the reversed tip (net 0), cpu-2, cpu-now.
    day = sustain_state(journal, ON, now=now)
    assert (day.income, day.cost, day.tier) == (30_000, 501_000, CONSERVE)
    assert income_cost(journal, since=now - timedelta(hours=24), until=now) == (30_000, 500_000)


def test_the_tier_changes_at_the_bar_on_a_real_ledger(journal: Journal, clock: Clock) -> None:
    now = clock.now
    _compute(journal, "cpu", "writer", CR, now - timedelta(hours=1))
    bar = SustainSettings(enabled=True, expand_at="1.5")
    assert sustain_state(journal, bar, now=now).tier == CONSERVE  # no income: never expand
    _tip(journal, "t1", CR, now - timedelta(minutes=30))
    assert sustain_state(journal, bar, now=now).tier == NORMAL  # exactly 1.0: not below break-even
    _tip(journal, "t2", 499_999, now - timedelta(minutes=20))
    assert sustain_state(journal, bar, now=now).tier == NORMAL  # 1.499999: under the bar, though 1.499 shown
    _tip(journal, "t3", 1, now - timedelta(minutes=10))
    state = sustain_state(journal, bar, now=now)
    assert (state.tier, state.ratio) == (EXPAND, 1500)
    assert state.reason == "expand: income 1.50 cr / cost 1.00 cr over 24 h = 1.50 >= 1.50"
    off = sustain_state(journal, bar.model_copy(update={"enabled": False}), now=now)
    assert off.tier == NORMAL and not off.enabled and "sustain rule is off" in off.reason and off.ratio == 1500


def test_no_cost_in_the_window_is_normal_and_says_too_little_history(journal: Journal, clock: Clock) -> None:
    now = clock.now
    _compute(journal, "old", "writer", CR, now - timedelta(hours=25))
    _tip(journal, "tip", 3 * CR, now - timedelta(hours=1))
    state = sustain_state(journal, ON, now=now)
    assert (state.tier, state.ratio, state.income, state.cost) == (NORMAL, None, 3 * CR, 0)
    assert "too little history" in state.reason and "income 3.00 cr" in state.reason


# -- the tier as a property --------------------------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=10**15)
bars = st.integers(min_value=1000, max_value=100_000)


@hsettings(max_examples=400, deadline=None)
@given(cost=amounts, a=amounts, b=amounts, bar=bars)
def test_tier_is_monotone_in_income_for_a_fixed_cost(cost: int, a: int, b: int, bar: int) -> None:
    low, high = sorted((a, b))
    t_low = decide(low, cost, expand_at=bar, window_hours=24).tier
    t_high = decide(high, cost, expand_at=bar, window_hours=24).tier
    assert RANK[t_low] <= RANK[t_high]


@hsettings(max_examples=400, deadline=None)
@given(cost=amounts, bar=bars)
def test_zero_income_never_expands(cost: int, bar: int) -> None:
    state = decide(0, cost, expand_at=bar, window_hours=24)
    assert state.tier != EXPAND
    assert state.tier == (CONSERVE if cost else NORMAL)


@hsettings(max_examples=400, deadline=None)
@given(income=amounts, cost=amounts, bar=bars)
def test_tier_matches_the_exact_rational(income: int, cost: int, bar: int) -> None:
    """Integers only: the tier is the exact comparison of income / cost with 1 and with the bar."""
    state = decide(income, cost, expand_at=bar, window_hours=24)
    if cost == 0:
        assert (state.tier, state.ratio) == (NORMAL, None)
        return
    assert state.ratio == income * 1000 // cost and isinstance(state.ratio, int)
    expected = CONSERVE if income < cost else EXPAND if income * 1000 >= bar * cost else NORMAL
    assert state.tier == expected


def test_tier_regressions() -> None:
    """Edges kept as named cases: just under break-even, exactly at the bar, a floored ratio at the bar."""
    assert decide(999_999, CR, expand_at=2000, window_hours=24).tier == CONSERVE
    assert decide(CR, CR, expand_at=1000, window_hours=24).tier == EXPAND  # bar 1.0: break-even expands
    assert decide(2 * CR, CR, expand_at=2000, window_hours=24).tier == EXPAND
    assert decide(2 * CR - 1, CR, expand_at=2000, window_hours=24).tier == NORMAL  # ratio shows 1.999
    assert decide(5, 0, expand_at=2000, window_hours=24).tier == NORMAL


# -- the ledger report ---------------------------------------------------------------------------------------


def test_ledger_report_shows_ratio_tier_and_why(journal: Journal, clock: Clock, make_budget) -> None:  # noqa: ANN001
    now = clock.now
    deposit(journal, 10 * CR, idempotency_key="fund", time=now - timedelta(days=2))
    _compute(journal, "cpu", "writer", 1_200_000, now - timedelta(hours=3))
    _tip(journal, "tip", 400_000, now - timedelta(hours=2))
    budget: Budget = make_budget()

    report = build_report(journal, budget, now=now, sustain=ON)
    got = report.to_dict()["sustain"]
    assert got == {
        "enabled": True, "tier": CONSERVE, "income": 400_000, "cost": 1_200_000, "ratio_per_mille": 333,
        "window_hours": 24, "expand_at_per_mille": 2000,
        "reason": "conserve: income 0.40 cr / cost 1.20 cr over 24 h = 0.33 < 1.0",
    }
    out = io.StringIO()
    render_table(report, Console(file=out, width=200))
    assert "conserve: income 0.40 cr / cost 1.20 cr over 24 h = 0.33 < 1.0" in out.getvalue()
    assert build_report(journal, budget, now=now).to_dict()["sustain"] is None
    assert build_report(journal, budget, now=now, sustain=SustainSettings()).to_dict()["sustain"] == got  # the default
    off = build_report(journal, budget, now=now, sustain=SustainSettings(enabled=False)).to_dict()["sustain"]
    assert (off["enabled"], off["tier"], off["ratio_per_mille"]) == (False, NORMAL, 333)
    assert off["reason"] == ("normal: the sustain rule is off ([sustain] enabled = false); "
                             "conserve: income 0.40 cr / cost 1.20 cr over 24 h = 0.33 < 1.0")
