"""The meter books each call's reported token usage on its ledger transaction (ledger_txn.input/output_tokens)."""

from __future__ import annotations

from sqlalchemy import text

from tests.agents.conftest import FAKE_MODEL

MSG = [{"role": "user", "content": "Write one sentence about otters."}]


async def test_the_ledger_transaction_of_a_call_carries_its_model_and_token_usage(make_llm, fake_openai, budget) -> None:
    fake_openai.enqueue("Otters hold hands.", usage=(17, 9))
    fake_openai.enqueue("Otters float.", usage=(40, 3))
    llm = make_llm()
    await llm.complete("writer", MSG, task_id="t1", cycle_id="c1")
    await llm.complete("critic", MSG, task_id="t1", cycle_id="c1")
    with budget.journal.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT kind, task_id, model, input_tokens, output_tokens FROM ledger_txn WHERE kind = 'compute' ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("compute", "t1", FAKE_MODEL, 17, 9), ("compute", "t1", FAKE_MODEL, 40, 3)]
