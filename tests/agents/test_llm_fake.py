"""The fake OpenAI server works as a MockTransport and as a real local server; real endpoints are switched off."""

from __future__ import annotations

import httpx2
import openai
import pytest

from agents.llm import LLMUnavailable, MeteredLLM, cost
from tests.agents.conftest import FAKE_MODEL, FAKE_PRICE, agents_on
from tests.fakes.openai import SERVING, FakeOpenAI, Fault

MSG = [{"role": "user", "content": "hi"}]


async def test_the_fake_records_history_and_reports_usage(fake_openai) -> None:
    fake_openai.enqueue("first", usage=(3, 2)).enqueue({"a": 1})
    client = fake_openai.client()
    r1 = await client.chat.completions.create(model="m", messages=MSG)
    r2 = await client.chat.completions.create(model="m", messages=MSG)
    r3 = await client.chat.completions.create(model="m", messages=MSG)
    assert [r.choices[0].message.content for r in (r1, r2, r3)] == ["first", '{"a": 1}', "ok"]
    assert (r1.usage.prompt_tokens, r1.usage.completion_tokens) == (3, 2)
    assert r3.usage.total_tokens == 15
    assert fake_openai.chat_requests[0].messages == MSG
    assert "authorization" not in fake_openai.history[0].headers


async def test_a_callable_reply_sees_the_request(fake_openai) -> None:
    fake_openai.default = lambda body: body["messages"][-1]["content"].upper()
    r = await fake_openai.client().chat.completions.create(model="m", messages=MSG)
    assert r.choices[0].message.content == "HI"


async def test_the_fake_as_a_real_server_meters_like_the_mock(budget, call_log) -> None:
    fake = FakeOpenAI(models=(FAKE_MODEL,))
    fake.enqueue(Fault.status(429, retry_after=0))
    fake.enqueue("served", usage=(11, 4))
    with fake.serve() as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-fake", max_retries=0)
        llm = MeteredLLM(agents_on(base_url), {FAKE_MODEL: FAKE_PRICE}, budget, {base_url: client}, log_to=call_log)
        done = await llm.complete("writer", MSG)
        models = await client.models.list()
    assert done.text == "served" and done.cost == cost(FAKE_PRICE, 11, 4)
    assert [m.id for m in models.data] == [FAKE_MODEL]
    assert budget.journal.balance("expenses:compute") == done.cost
    assert not SERVING


@pytest.mark.parametrize("fault", [Fault.reset(), Fault.timeout(delay=1.5), Fault.malformed()], ids=["reset", "timeout", "malformed"])
async def test_the_real_server_injects_faults(budget, fault) -> None:
    fake = FakeOpenAI(models=(FAKE_MODEL,))
    fake.enqueue(fault)
    with fake.serve() as base_url:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-fake", max_retries=0)
        llm = MeteredLLM(agents_on(base_url, max_retries=0, timeout_seconds=1), {FAKE_MODEL: FAKE_PRICE}, budget, {base_url: client})
        with pytest.raises(LLMUnavailable):
            await llm.complete("writer", MSG)
    assert budget.open_reservations() == 0
    assert len(fake.chat_requests) == 1  # the request was received before the fault


async def test_unit_tests_may_not_reach_a_real_llm_endpoint() -> None:
    async with httpx2.AsyncClient() as http:
        with pytest.raises(RuntimeError, match="real_llm"):
            await http.post("http://127.0.0.1:9/v1/chat/completions", json={})
