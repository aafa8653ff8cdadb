"""The layers of the LLM client, each tested through its seam: the provider's outcome classes over the
wire, and the meter's money per outcome with the provider faked (tests/fakes/provider.py).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.llm import LLMError, MeteredLLM, cost, estimate_prompt_tokens
from agents.llm.provider import AMBIGUOUS, ANSWERED, NOT_SENT, REJECTED, OpenAIProvider, Request
from agents.protocol import Usage
from config.settings import BudgetSettings
from ledger import Budget
from ledger.funding import deposit
from tests.agents.conftest import FAKE_MODEL, FAKE_PRICE, FAKE_URL, agents_on
from tests.fakes.openai import FakeOpenAI, Fault
from tests.fakes.provider import FakeProvider, ambiguous, answered, not_sent, rejected

MSG = [{"role": "user", "content": "hello"}]
PROMPT = estimate_prompt_tokens(MSG)  # an upper bound: a provider never bills a longer prompt for it
WORST = cost(FAKE_PRICE, PROMPT, 512)


def spent(budget: Budget) -> int:
    return budget.journal.balance("expenses:compute")


# -- the provider: what happened on the wire, as an outcome class ----------------------------------


@pytest.mark.parametrize(("fault", "outcome", "status"), [
    (None, ANSWERED, 200),
    (Fault.refused(), NOT_SENT, None),
    (Fault.timeout(), AMBIGUOUS, None),
    (Fault.late(), AMBIGUOUS, None),
    (Fault.reset(), AMBIGUOUS, None),
    (Fault.malformed(), AMBIGUOUS, 200),
    (Fault.status(500), AMBIGUOUS, 500),
    (Fault.status(500, usage=(12, 3)), REJECTED, 500),
    (Fault.status(429, retry_after=2), REJECTED, 429),
    (Fault.status(400, usage=(7, 0)), REJECTED, 400),
    (Fault.status(401), REJECTED, 401),
], ids=["ok", "refused", "timeout", "late", "reset", "malformed", "500", "500-usage", "429", "400-usage", "401"])
async def test_the_provider_classifies_every_outcome(fault, outcome, status) -> None:
    fake = FakeOpenAI()
    if fault is not None:
        fake.fail(fault)
    reply = await OpenAIProvider(fake.client(FAKE_URL)).send(Request(FAKE_MODEL, MSG, 64))
    assert (reply.outcome, reply.status) == (outcome, status)
    if fault is None:
        assert reply.text == "ok" and reply.usage == Usage(10, 5) and reply.finish_reason == "stop"
    if fault is not None and fault.kind == "status":
        assert reply.usage == (Usage(*fault.usage) if fault.usage else None)
        assert reply.retry_after == fault.retry_after


# -- the meter: money by outcome, the provider faked ------------------------------------------------


@pytest.mark.parametrize(("reply", "expected", "raises"), [
    (answered("x", 17, 9), cost(FAKE_PRICE, 17, 9), False),
    (answered("x", usage=False), WORST, False),
    (rejected(400, usage=Usage(40, 0)), cost(FAKE_PRICE, 40, 0), True),
    (rejected(403), 0, True),
    (ambiguous(), WORST, True),
    (ambiguous("InternalServerError", status=503), WORST, True),
    (not_sent(), 0, True),
], ids=["answered", "answered-no-usage", "rejected-usage", "rejected", "ambiguous", "5xx", "not-sent"])
async def test_the_meter_pays_by_outcome(make_llm, budget, reply, expected, raises) -> None:
    provider = FakeProvider(default=reply)
    llm = make_llm(agents=agents_on(max_retries=0), clients={FAKE_URL: provider})
    if raises:
        with pytest.raises(LLMError):
            await llm.complete("writer", MSG)
    else:
        await llm.complete("writer", MSG)
    assert spent(budget) == expected
    assert budget.open_reservations() == 0
    assert len(provider.requests) == 1 and provider.requests[0].max_tokens == 512


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(script=st.lists(st.tuples(
    st.sampled_from(["answered", "no-usage", "rejected", "rejected-usage", "ambiguous", "not-sent"]),
    st.integers(0, 300), st.integers(0, 512)), min_size=1, max_size=8))
async def test_spend_covers_what_the_provider_served_whatever_it_answers(make_llm, journal, script) -> None:
    budget = Budget(journal, BudgetSettings(daily_cap="100000", per_cycle_cap="100000", min_balance="0"))
    if budget.available() < 1_000_000:
        deposit(journal, 10_000_000)
    before = spent(budget)
    provider = FakeProvider()
    for kind, tin, tout in script:
        u = Usage(tin, tout)
        provider.enqueue({
            "answered": answered("x", tin, tout), "no-usage": answered("x", usage=False),
            "rejected": rejected(400), "rejected-usage": rejected(422, usage=u), "ambiguous": ambiguous(),
            "not-sent": not_sent(),
        }[kind], served=Usage(min(tin, PROMPT), tout) if kind in ("no-usage", "ambiguous") else None)
    llm: MeteredLLM = make_llm(agents=agents_on(max_retries=0), clients={FAKE_URL: provider}, breaker_threshold=1000)
    llm.budget = budget
    received = 0  # the cost of every usage that came back to the client
    for _ in script:
        try:
            done = await llm.complete("writer", MSG)
            received += done.cost if done.meta["usage_reported"] else 0
        except LLMError:
            pass
    served = sum(cost(FAKE_PRICE, u.input_tokens, u.output_tokens) for u in provider.served)
    booked = spent(budget) - before
    assert booked >= served  # served usage never exceeds the worst case: tin <= PROMPT, tout <= max_tokens
    assert budget.open_reservations() == 0
    unknown = sum(1 for kind, *_ in script if kind in ("no-usage", "ambiguous"))
    assert booked == received + unknown * WORST + sum(
        cost(FAKE_PRICE, tin, tout) for kind, tin, tout in script if kind == "rejected-usage")


# -- the provider is the only door to the openai SDK ---------------------------------------------


def test_only_the_provider_imports_openai() -> None:
    """Product rooms and the benchmarks reach the SDK through agents/llm/provider.py (crew.py runs CrewAI's own)."""
    import ast
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    own_environment = {repo / "bench" / "side_by_side" / "crew.py"}
    importers = []
    for room in ("kernel", "config", "ledger", "wallet", "publishers", "agents", "website", "daemon", "bench"):
        for path in sorted((repo / room).rglob("*.py")):
            if path in own_environment or "node_modules" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
                if any(n.split(".")[0] == "openai" for n in names):
                    importers.append(str(path.relative_to(repo)))
    assert importers == ["agents/llm/provider.py"]
