"""The llm_call table migrates on its own history, on SQLite and PostgreSQL, and answers reports."""

from __future__ import annotations

from sqlalchemy import inspect

from agents.llm.calllog import ERROR, OK, REFUSED, VERSION_TABLE, CallLog, CallRecord


def test_the_call_log_migrates_on_its_own_version_table_and_sums_by_cycle(engine) -> None:
    log = CallLog(engine)
    log.migrate()
    log.migrate()  # idempotent
    tables = set(inspect(engine).get_table_names())
    assert {"llm_call", VERSION_TABLE} <= tables
    log.record(CallRecord("writer", "m", "http://x/v1", OK, 10, 5, cost=3_000_000_000_000, cycle_id="c", task_id="t"))
    log.record(CallRecord("writer", "m", "http://x/v1", ERROR, 7, 0, cost=14, cycle_id="c", error_class="InternalServerError"))
    log.record(CallRecord("critic", "m", "http://x/v1", REFUSED, cycle_id="c", error_class="BudgetExceeded:role_calls"))
    log.record(CallRecord("critic", "m", "http://x/v1", OK, 1, 1, cost=1, cycle_id="other"))
    t = log.totals(cycle_id="c")
    assert (t.calls, t.input_tokens, t.output_tokens, t.cost) == (2, 17, 5, 3_000_000_000_014)  # refusals not counted
    assert log.totals(cycle_id="c", role="critic").calls == 0
    rows = log.calls(cycle_id="c")
    assert [r.outcome for r in rows] == [OK, ERROR, REFUSED]
    assert rows[0].time.tzinfo is not None and rows[1].error_class == "InternalServerError"
