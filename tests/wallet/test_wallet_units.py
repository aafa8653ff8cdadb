"""Token units <-> micro-credits: rounding against the agent, remainder kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.units import ucr_to_units, units_to_ucr


def test_incoming_rounds_down_and_keeps_the_dust() -> None:
    got = units_to_ucr(1_234_567_890_123_456_789, 18)
    assert (got.ucr, got.dust_units) == (1_234_567, 890_123_456_789)


def test_outgoing_is_exact_when_the_token_has_six_or_more_decimals() -> None:
    out = ucr_to_units(1_500_000, 18)
    assert (out.units, out.ucr) == (1_500_000 * 10**12, 1_500_000)


def test_outgoing_rounds_up_when_the_token_has_fewer_decimals() -> None:
    out = ucr_to_units(1_234_567, 2)  # 1.234567 credits -> 124 cents
    assert (out.units, out.ucr) == (124, 1_240_000)


def test_floats_are_refused() -> None:
    with pytest.raises(ValueError):
        units_to_ucr(1.5, 18)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**40), st.integers(min_value=0, max_value=30))
def test_incoming_never_credits_more_than_arrived(units: int, decimals: int) -> None:
    got = units_to_ucr(units, decimals)
    assert ucr_to_units(got.ucr, decimals).units + got.dust_units == units


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=30))
def test_outgoing_never_pays_less_than_owed(ucr: int, decimals: int) -> None:
    out = ucr_to_units(ucr, decimals)
    assert out.ucr >= ucr
    assert units_to_ucr(out.units, decimals).ucr == out.ucr
