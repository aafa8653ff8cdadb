"""Retries on 429/5xx/timeouts with Retry-After; fallbacks behind circuit breakers, and recovery."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from agents.llm.calllog import ERROR, OK
from agents.llm import LLMRequestRejected, LLMUnavailable, cost
from config.settings import Endpoint
from tests.agents.conftest import FAKE_MODEL, FAKE_PRICE, FAKE_URL, agents_on
from tests.fakes.openai import FakeOpenAI, Fault

MSG = [{"role": "user", "content": "hello"}]
BACKUP_URL = "http://backup-llm.test/v1"
BACKUP_MODEL = "backup-model"
BACKUP_PRICE = FAKE_PRICE.model_copy(update={"provider": "backup"})


async def test_a_429_is_retried_after_the_retry_after_it_asked_for(make_llm, fake_openai, sleeps, call_log) -> None:
    fake_openai.fail(Fault.status(429, retry_after=7))
    done = await make_llm().complete("writer", MSG)
    assert done.text == "ok" and done.meta["attempts"] == 2
    assert sleeps == [7]
    assert [r.outcome for r in call_log.calls()] == [ERROR, OK]
    assert call_log.calls()[0].error_class == "RateLimitError"


async def test_retry_after_is_capped(make_llm, fake_openai, sleeps) -> None:
    fake_openai.fail(Fault.status(503, retry_after=3600))
    await make_llm(max_retry_after=30).complete("writer", MSG)
    assert sleeps == [30]


@pytest.mark.parametrize("fault", [Fault.status(500), Fault.status(502), Fault.timeout(), Fault.reset(), Fault.malformed()],
                         ids=["500", "502", "timeout", "reset", "malformed"])
async def test_transient_failures_are_retried_with_backoff(make_llm, fake_openai, sleeps, fault) -> None:
    fake_openai.fail(fault, times=2)
    done = await make_llm().complete("writer", MSG)
    assert done.text == "ok" and done.meta["attempts"] == 3
    assert len(sleeps) == 2 and 0 < sleeps[0] < sleeps[1] <= 20


async def test_every_attempt_is_metered_separately(make_llm, fake_openai, budget) -> None:
    fake_openai.fail(Fault.status(500, usage=(30, 2)))
    fake_openai.enqueue("ok", usage=(30, 6))
    done = await make_llm().complete("writer", MSG)
    assert done.cost == cost(FAKE_PRICE, 30, 6)
    assert budget.journal.balance("expenses:compute") == cost(FAKE_PRICE, 30, 2) + cost(FAKE_PRICE, 30, 6)


async def test_retries_stop_at_max_retries_with_llm_unavailable(make_llm, fake_openai, budget) -> None:
    fake_openai.fail(Fault.status(500), times=10)
    with pytest.raises(LLMUnavailable) as err:
        await make_llm(agents=agents_on(max_retries=2), breaker_threshold=10).complete("writer", MSG)
    assert err.value.retryable and err.value.last_error == "InternalServerError"
    assert len(fake_openai.chat_requests) == 3
    assert budget.open_reservations() == 0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(make_llm, fake_openai, status) -> None:
    fake_openai.fail(Fault.status(status), times=3)
    with pytest.raises(LLMRequestRejected) as err:
        await make_llm().complete("writer", MSG)
    assert err.value.status_code == status
    assert len(fake_openai.chat_requests) == 1


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def backup() -> FakeOpenAI:
    return FakeOpenAI(default="from backup", usage=(10, 5))


@pytest.fixture
def with_fallback(make_llm, fake_openai, backup):
    clock = Clock()
    agents = agents_on(max_retries=5, fallbacks=(Endpoint(base_url=BACKUP_URL, model=BACKUP_MODEL),))
    llm = make_llm(
        agents=agents, prices={FAKE_MODEL: FAKE_PRICE, BACKUP_MODEL: BACKUP_PRICE},
        clients={FAKE_URL: fake_openai.client(FAKE_URL), BACKUP_URL: backup.client(BACKUP_URL)},
        clock=clock, breaker_threshold=3, breaker_cooldown=timedelta(seconds=60),
    )
    return llm, clock


async def test_after_repeated_failures_calls_go_to_the_fallback(with_fallback, fake_openai, backup, budget) -> None:
    llm, _ = with_fallback
    fake_openai.fail(Fault.status(503), times=3)
    done = await llm.complete("writer", MSG)
    assert done.text == "from backup" and done.model == BACKUP_MODEL
    assert done.endpoint == BACKUP_URL
    assert len(fake_openai.chat_requests) == 3 and len(backup.chat_requests) == 1
    assert llm.breaker(FAKE_URL).state(llm.clock()) == "open"
    # while open, the main endpoint is skipped without a request
    await llm.complete("writer", MSG)
    assert len(fake_openai.chat_requests) == 3 and len(backup.chat_requests) == 2
    assert budget.journal.balance("liabilities:provider:backup") == -2 * cost(BACKUP_PRICE, 10, 5)


async def test_calls_return_to_the_main_endpoint_when_it_recovers(with_fallback, fake_openai, backup) -> None:
    llm, clock = with_fallback
    fake_openai.fail(Fault.status(503), times=3)
    await llm.complete("writer", MSG)
    clock.now += timedelta(seconds=61)  # half-open: one trial request goes to the main endpoint
    done = await llm.complete("writer", MSG)
    assert done.endpoint == FAKE_URL and done.text == "ok"
    assert llm.breaker(FAKE_URL).state(clock()) == "closed"
    await llm.complete("writer", MSG)
    assert len(backup.chat_requests) == 1


async def test_a_failed_half_open_trial_reopens_the_circuit(with_fallback, fake_openai, backup) -> None:
    llm, clock = with_fallback
    fake_openai.fail(Fault.status(503), times=4)
    await llm.complete("writer", MSG)
    clock.now += timedelta(seconds=61)
    done = await llm.complete("writer", MSG)
    assert done.endpoint == BACKUP_URL  # the trial failed, back to the fallback at once
    assert len(fake_openai.chat_requests) == 4
    assert llm.breaker(FAKE_URL).state(clock()) == "open"


async def test_when_every_circuit_is_open_the_call_fails_fast(with_fallback, fake_openai, backup) -> None:
    llm, _ = with_fallback
    fake_openai.fail(Fault.status(503), times=3)
    backup.fail(Fault.timeout(), times=3)
    with pytest.raises(LLMUnavailable, match="circuit open|no endpoint"):
        await llm.complete("writer", MSG)
    seen = len(fake_openai.chat_requests) + len(backup.chat_requests)
    with pytest.raises(LLMUnavailable, match="circuit open"):
        await llm.complete("writer", MSG)
    assert len(fake_openai.chat_requests) + len(backup.chat_requests) == seen
