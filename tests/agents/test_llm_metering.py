"""Every call reserves the worst case, posts the reported usage priced, and closes its hold."""

from __future__ import annotations

import pytest

from agents.llm.calllog import ERROR, OK, REFUSED
from agents.llm import PriceMissing, cost, estimate_prompt_tokens
from config.settings import BudgetSettings, ModelPrice
from ledger import Budget, BudgetExceeded
from tests.agents.conftest import FAKE_MODEL, FAKE_PRICE, agents_on
from tests.fakes.openai import Fault

MSG = [{"role": "user", "content": "Write one sentence about otters."}]


def spent(budget: Budget) -> int:
    return budget.journal.balance("expenses:compute")


def test_cost_rounds_up_to_the_micro_credit_with_integers_only() -> None:
    price = ModelPrice(input_per_million="1.234567", output_per_million="0.000001")
    assert cost(price, 7, 0) == 9  # 7 * 1.234567 = 8.641969 ucr -> 9
    assert cost(price, 0, 1) == 1  # a millionth of a ucr still costs one
    assert cost(price, 0, 0) == 0
    assert cost(FAKE_PRICE, 10, 5) == 50


def test_prompt_estimate_grows_with_the_prompt_and_counts_every_message() -> None:
    one = estimate_prompt_tokens([{"role": "user", "content": "x"}])
    assert estimate_prompt_tokens(MSG) > one
    assert estimate_prompt_tokens([{"role": "user", "content": "x"}] * 2) > one
    assert estimate_prompt_tokens(MSG, extra='{"type": "object"}') > estimate_prompt_tokens(MSG)
    # multi-byte text counts by UTF-8 bytes, never fewer tokens than characters / 2
    assert estimate_prompt_tokens([{"role": "user", "content": "日本語" * 10}]) >= 45


async def test_a_call_posts_the_reported_usage_priced_and_closes_its_reservation(make_llm, fake_openai, budget) -> None:
    fake_openai.enqueue("Otters hold hands.", usage=(17, 9))
    llm = make_llm()
    done = await llm.complete("writer", MSG, task_id="t1", cycle_id="c1")
    assert done.text == "Otters hold hands."
    assert (done.usage.input_tokens, done.usage.output_tokens) == (17, 9)
    assert done.cost == cost(FAKE_PRICE, 17, 9) == 88
    assert spent(budget) == 88
    assert budget.journal.balance("liabilities:provider:fake") == -88
    assert budget.open_reservations() == 0
    assert budget.cycle_spent("c1") == 88
    # the hold was the worst case: estimated prompt + max_tokens (writer default 512) at the price
    assert done.meta["reserved"] == cost(FAKE_PRICE, estimate_prompt_tokens(MSG), 512)
    sent = fake_openai.chat_requests[0].body
    assert sent["max_tokens"] == 512 and sent["model"] == FAKE_MODEL and sent["temperature"] == 0


async def test_ledger_spend_equals_the_sum_of_reported_usage_over_many_calls(make_llm, fake_openai, budget) -> None:
    usages = [(13, 7), (101, 3), (1, 1), (250, 128)]
    for u in usages:
        fake_openai.enqueue("x", usage=u)
    llm = make_llm()
    costs = [(await llm.complete("research", MSG, cycle_id="c")).cost for _ in usages]
    assert costs == [cost(FAKE_PRICE, *u) for u in usages]
    assert spent(budget) == sum(costs)
    assert budget.open_reservations() == 0


async def test_a_model_without_a_price_is_refused_before_any_call(make_llm, fake_openai, budget) -> None:
    llm = make_llm(prices={})
    with pytest.raises(PriceMissing) as err:
        await llm.complete("critic", MSG)
    assert FAKE_MODEL in str(err.value) and "prices" in str(err.value)
    assert fake_openai.history == []
    assert budget.open_reservations() == 0


async def test_a_fallback_without_a_price_is_refused_before_any_call(make_llm, fake_openai) -> None:
    from config.settings import Endpoint

    agents = agents_on(fallbacks=(Endpoint(base_url="http://other.test/v1", model="unpriced"),))
    with pytest.raises(PriceMissing, match="unpriced"):
        await make_llm(agents=agents).complete("writer", MSG)
    assert fake_openai.history == []


async def test_max_tokens_is_lowered_to_fit_the_headroom(make_llm, fake_openai, journal) -> None:
    # 2,000 ucr per cycle: the writer's 512-token worst case (>3,000 ucr) does not fit.
    budget = Budget(journal, BudgetSettings(per_cycle_cap="0.002"))
    llm = make_llm()
    llm.budget = budget
    done = await llm.complete("writer", MSG, cycle_id="small")
    sent = fake_openai.chat_requests[0].body["max_tokens"]
    assert 16 <= sent < 512
    prompt = estimate_prompt_tokens(MSG)
    assert cost(FAKE_PRICE, prompt, sent) <= 2000 < cost(FAKE_PRICE, prompt, sent + 1)
    assert done.meta["max_tokens"] == sent
    assert budget.open_reservations() == 0


async def test_a_call_that_cannot_fit_is_refused_with_budget_exceeded(make_llm, fake_openai, journal, call_log) -> None:
    budget = Budget(journal, BudgetSettings(per_cycle_cap="0.000100"))  # 100 ucr: not even the prompt
    llm = make_llm()
    llm.budget = budget
    with pytest.raises(BudgetExceeded) as err:
        await llm.complete("writer", MSG, cycle_id="tiny")
    assert err.value.limit == "per_cycle_cap"
    assert fake_openai.history == []
    assert budget.open_reservations() == 0
    assert [r.outcome for r in call_log.calls(cycle_id="tiny")] == [REFUSED]


async def test_a_failed_call_records_the_usage_the_provider_reported(make_llm, fake_openai, budget, call_log) -> None:
    fake_openai.fail(Fault.status(400, usage=(40, 0)))
    with pytest.raises(Exception):
        await make_llm().complete("writer", MSG, cycle_id="f")
    assert spent(budget) == cost(FAKE_PRICE, 40, 0) == 80
    assert budget.open_reservations() == 0
    row = call_log.calls(cycle_id="f")[0]
    assert (row.outcome, row.status_code, row.input_tokens, row.cost) == (ERROR, 400, 40, 80)


async def test_a_failed_call_without_reported_usage_releases_its_hold(make_llm, fake_openai, budget) -> None:
    fake_openai.fail(Fault.status(403))
    with pytest.raises(Exception):
        await make_llm().complete("writer", MSG)
    assert spent(budget) == 0
    assert budget.open_reservations() == 0
    assert budget.snapshot().reserved == 0


@pytest.mark.parametrize(
    "fault",
    [Fault.status(500), Fault.status(429), Fault.timeout(), Fault.reset(), Fault.malformed(), Fault.status(401)],
    ids=["500", "429", "timeout", "reset", "malformed", "401"],
)
async def test_no_reservation_stays_open_after_any_failure(make_llm, fake_openai, budget, fault) -> None:
    fake_openai.fail(fault, times=10)
    with pytest.raises(Exception):
        await make_llm(agents=agents_on(max_retries=1)).complete("critic", MSG, cycle_id="x")
    assert budget.open_reservations() == 0
    assert budget.snapshot().reserved == 0


async def test_a_reply_without_usage_posts_the_held_worst_case(make_llm, fake_openai, budget) -> None:
    fake_openai.enqueue("no usage here", usage=None)
    done = await make_llm().complete("writer", MSG)
    assert done.meta["usage_reported"] is False
    assert done.cost == done.meta["reserved"] == spent(budget)


async def test_a_cancelled_call_books_its_worst_case(make_llm, budget) -> None:
    import asyncio

    class Hanging:
        class chat:  # noqa: N801
            class completions:  # noqa: N801
                @staticmethod
                async def create(**_kw):  # noqa: ANN003, ANN205
                    await asyncio.sleep(30)

    llm = make_llm(clients=lambda _url: Hanging())
    task = asyncio.create_task(llm.complete("writer", MSG))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # It may have left: a cancelled request is paid at its worst case, not given back.
    assert budget.open_reservations() == 0
    assert spent(budget) == cost(FAKE_PRICE, estimate_prompt_tokens(MSG), 512)


async def test_the_call_log_row_holds_tokens_cost_latency_and_ids(make_llm, fake_openai, call_log) -> None:
    fake_openai.enqueue("fine", usage=(21, 4))
    await make_llm().complete("critic", MSG, task_id="task-9", cycle_id="cyc-9")
    (row,) = call_log.calls(task_id="task-9")
    assert (row.role, row.model, row.outcome) == ("critic", FAKE_MODEL, OK)
    assert (row.input_tokens, row.output_tokens, row.cost) == (21, 4, cost(FAKE_PRICE, 21, 4))
    assert row.endpoint == "http://fake-llm.test/v1"
    assert row.cycle_id == "cyc-9" and row.latency_ms >= 0 and row.reservation_id is not None
    totals = call_log.totals(cycle_id="cyc-9")
    assert (totals.calls, totals.tokens, totals.cost) == (1, 25, row.cost)
