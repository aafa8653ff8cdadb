"""Per-role endpoints and models, tiers by runway, per-cycle role caps, tracing."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agents.llm.calllog import REFUSED
from agents.llm import UnknownRole
from config.settings import AgentSettings, AgentsSettings, Tier
from ledger import BudgetExceeded
from tests.agents.conftest import FAKE_MODEL, FAKE_PRICE, FAKE_URL, agents_on
from tests.fakes.openai import FakeOpenAI, Fault

MSG = [{"role": "user", "content": "hi"}]
TIERS = (Tier(min_runway_days=30, model="big"), Tier(min_runway_days=7, model="mid"), Tier(min_runway_days=0, model="small"))
PRICES = {m: FAKE_PRICE for m in ("big", "mid", "small", FAKE_MODEL)}


@pytest.mark.parametrize(("runway", "model"), [(90.0, "big"), (30.0, "big"), (10.5, "mid"), (2.0, "small"), (None, FAKE_MODEL)])
async def test_tiers_pick_the_model_by_runway(make_llm, fake_openai, runway, model) -> None:
    llm = make_llm(agents=agents_on(tiers=TIERS), prices=PRICES, runway=lambda: runway)
    done = await llm.complete("writer", MSG)
    assert done.model == model == fake_openai.chat_requests[0].body["model"]


async def test_tiers_listed_in_any_order_pick_the_highest_reached(make_llm, fake_openai) -> None:
    llm = make_llm(agents=agents_on(tiers=tuple(reversed(TIERS))), prices=PRICES, runway=lambda: 12)
    assert (await llm.complete("writer", MSG)).model == "mid"


async def test_each_role_uses_its_own_endpoint_and_model(make_llm, fake_openai) -> None:
    other = FakeOpenAI(default="from other")
    agents = AgentsSettings(
        orchestrator=AgentSettings(base_url=FAKE_URL, model=FAKE_MODEL),
        research=AgentSettings(base_url=FAKE_URL, model=FAKE_MODEL),
        writer=AgentSettings(base_url="http://other.test/v1", model="big"),
        critic=AgentSettings(base_url=FAKE_URL, model="small"),
    )
    llm = make_llm(agents=agents, prices=PRICES, clients={FAKE_URL: fake_openai.client(), "http://other.test/v1": other.client("http://other.test/v1")})
    assert (await llm.complete("writer", MSG)).text == "from other"
    assert (await llm.complete("critic", MSG)).model == "small"
    assert other.chat_requests[0].body["model"] == "big"


async def test_an_unknown_role_is_refused(make_llm) -> None:
    with pytest.raises(UnknownRole):
        await make_llm().complete("janitor", MSG)


async def test_a_role_cannot_exceed_its_calls_per_cycle(make_llm, fake_openai, call_log) -> None:
    llm = make_llm(agents=agents_on(max_calls_per_cycle=2))
    await llm.complete("research", MSG, cycle_id="c1")
    await llm.complete("research", MSG, cycle_id="c1")
    with pytest.raises(BudgetExceeded) as err:
        await llm.complete("research", MSG, cycle_id="c1")
    assert err.value.limit == "role_calls" and err.value.agent == "research"
    assert len(fake_openai.chat_requests) == 2
    await llm.complete("writer", MSG, cycle_id="c1")  # another role has its own cap
    await llm.complete("research", MSG, cycle_id="c2")  # and the next cycle starts afresh
    assert call_log.calls(cycle_id="c1")[-2].outcome == REFUSED


async def test_the_calls_cap_survives_a_restart_through_the_call_log(make_llm, fake_openai) -> None:
    await make_llm(agents=agents_on(max_calls_per_cycle=1)).complete("research", MSG, cycle_id="c")
    with pytest.raises(BudgetExceeded, match="role_calls"):
        await make_llm(agents=agents_on(max_calls_per_cycle=1)).complete("research", MSG, cycle_id="c")


async def test_a_role_token_budget_lowers_max_tokens_then_refuses(make_llm, fake_openai) -> None:
    from agents.llm import estimate_prompt_tokens

    fake_openai.default_usage = (100, 300)
    llm = make_llm(agents=agents_on(token_budget_per_cycle=520, max_tokens=512))
    prompt = estimate_prompt_tokens(MSG)
    await llm.complete("writer", MSG, cycle_id="t")
    await llm.complete("writer", MSG, cycle_id="t")
    sent = [r.body["max_tokens"] for r in fake_openai.chat_requests]
    assert sent == [520 - prompt, 520 - 400 - prompt]  # worst case lowered to what the role has left
    with pytest.raises(BudgetExceeded) as err:
        await llm.complete("writer", MSG, cycle_id="t")  # 800 of 520 tokens used
    assert err.value.limit == "role_tokens" and err.value.remaining == 520 - 800
    assert len(fake_openai.chat_requests) == 2


async def test_every_call_is_a_span_with_gen_ai_attributes(make_llm, fake_openai) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fake_openai.enqueue(Fault.status(500))
    fake_openai.enqueue("ok", usage=(12, 3))
    await make_llm(tracer=provider.get_tracer("test")).complete("critic", MSG, task_id="t1", cycle_id="c1")
    failed, ok = exporter.get_finished_spans()
    a = dict(ok.attributes)
    assert ok.name == f"chat {FAKE_MODEL}"
    assert a["gen_ai.system"] == "openai" and a["gen_ai.request.model"] == FAKE_MODEL
    assert a["gen_ai.usage.input_tokens"] == 12 and a["gen_ai.usage.output_tokens"] == 3
    assert a["gen_ai.provider.name"] == "fake" and a["selfpub.role"] == "critic" and a["selfpub.task_id"] == "t1"
    assert a["server.address"] == "fake-llm.test"
    assert failed.attributes["error.type"] == "InternalServerError"
    assert not failed.status.is_ok


def test_clients_for_builds_one_client_per_endpoint_without_sdk_retries() -> None:
    from pydantic import SecretStr

    from agents.llm.embedded import resolve_embedded
    from agents.llm import clients_for
    from config.settings import Endpoint

    agents = AgentsSettings(
        writer=AgentSettings(
            base_url="http://remote.test/v1", model="big", api_key_value=SecretStr("sk-secret"),
            fallbacks=(Endpoint(base_url="embedded", model="smollm2-135m-instruct"),),
        ),
    )
    with pytest.raises(ValueError, match="resolve_embedded"):
        clients_for(agents)
    clients = clients_for(resolve_embedded(agents, "http://127.0.0.1:8080/v1"))
    assert set(clients) == {"http://remote.test/v1", "http://127.0.0.1:8080/v1"}
    assert all(c.max_retries == 0 for c in clients.values())
    assert clients["http://remote.test/v1"].api_key == "sk-secret"
    assert "sk-secret" not in repr(agents)
