"""A long-running daemon's LLM client keeps per-cycle state for recent cycles only."""

from __future__ import annotations

import pytest

from agents.llm.metered import ROLE_USAGE_CYCLES
from ledger import BudgetExceeded
from tests.agents.conftest import agents_on

MSG = [{"role": "user", "content": "hi"}]


async def test_role_counters_are_kept_for_recent_cycles_only(make_llm, fake_openai) -> None:
    llm = make_llm()
    for n in range(ROLE_USAGE_CYCLES * 3):
        await llm.complete("research", MSG, cycle_id=f"c{n}")
        await llm.complete("writer", MSG, cycle_id=f"c{n}")
    assert len(llm._role_usage) == ROLE_USAGE_CYCLES
    assert set(llm._role_usage) == {f"c{n}" for n in range(ROLE_USAGE_CYCLES * 2, ROLE_USAGE_CYCLES * 3)}


async def test_a_pruned_cycle_still_has_its_cap_from_the_call_log(make_llm, fake_openai) -> None:
    llm = make_llm(agents=agents_on(max_calls_per_cycle=1))
    await llm.complete("research", MSG, cycle_id="old")
    for n in range(ROLE_USAGE_CYCLES):
        await llm.complete("research", MSG, cycle_id=f"c{n}")
    assert "old" not in llm._role_usage
    with pytest.raises(BudgetExceeded, match="role_calls"):
        await llm.complete("research", MSG, cycle_id="old")
