"""kernel.clock and kernel.money: one home each, and the rooms use it."""

from __future__ import annotations

import re
from datetime import timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.clock import utcnow
from kernel.money import UCR_PER_CREDIT, AmountError, format_credits, parse_credits

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("kernel", "config", "ledger", "wallet", "publishers", "agents", "website", "daemon")


def test_utcnow_is_aware_utc():
    now = utcnow()
    assert now.tzinfo is not None and now.utcoffset() == timezone.utc.utcoffset(now)


def test_the_clock_and_the_retry_after_reader_are_defined_once():
    """No room keeps its own copy of utcnow or of a Retry-After parser."""
    copies = []
    for room in PRODUCT:
        for path in (REPO / room).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            for name in re.findall(r"^def (utcnow|_?parse_retry_after|retry_after)\(", source, re.M):
                copies.append(f"{path.relative_to(REPO)}: {name}")
            if "parsedate_to_datetime" in source and path != REPO / "kernel" / "http.py":
                copies.append(f"{path.relative_to(REPO)}: parses HTTP dates itself")
    assert copies == [f"kernel{'/'}clock.py: utcnow"]


def test_rooms_share_the_kernel_clock():
    import agents.tasks
    import ledger.models
    import publishers.models
    import wallet.models

    assert {agents.tasks.utcnow, ledger.models.utcnow, publishers.models.utcnow, wallet.models.utcnow} == {utcnow}


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_format_then_parse_is_the_identity(ucr: int):
    assert parse_credits(format_credits(ucr)) == ucr


def test_amounts_refused():
    assert parse_credits("1.25") == 1_250_000 and parse_credits(2) == 2 * UCR_PER_CREDIT
    assert parse_credits(Decimal("0.000001")) == 1
    for bad in (1.5, True, "1e3", "0.0000001", "NaN", "x"):
        with pytest.raises(AmountError):
            parse_credits(bad)
