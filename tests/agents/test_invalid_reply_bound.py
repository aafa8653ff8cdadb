"""A writer that never answers a usable reply: the task fails after review.max_attempts, says why
(`selfpub drafts list`, the status page's failures) and costs nothing more; a transient error is
retried at the next cycle and never counted."""

from __future__ import annotations

from datetime import timedelta

from typer.testing import CliRunner

from agents.critic import Critic
from agents.tasks import FAILED, PUBLISHED, RESEARCHED
from agents.writer import Writer
from config.settings import Settings
from daemon.cli import app
from daemon.console import failures_table
from ledger.reads import task_cost
from tests.agents.test_orchestrator_cycle import Rig, sq_engine  # noqa: F401 - the fixture
from tests.fakes.provider import rejected
from tests.fakes.scripted_llm import BriefingResearcher, scripted_metered, writer_reply

BROKEN = '{"title": "Half an article", "body_markdown": "cut off at max_tok'  # not JSON: the reply was truncated


def bounded(rig: Rig) -> Rig:
    """The rig with the bound from the settings and the LLM's clock on the rig's (breakers cool down with it)."""
    rig.max_attempts = None
    default = rig.provider.default
    rig.llm, rig.provider = scripted_metered(rig.budget, rig.calllog, clock=lambda: rig.clock[0])
    rig.provider.default = default
    rig.research, rig.writer = BriefingResearcher(rig.llm), Writer(rig.llm)
    rig.critic = Critic(rig.llm, rig.settings.review)
    return rig


async def next_cycle(rig: Rig):  # noqa: ANN201
    rig.feed.pending = []  # no new item: only the task in hand
    rig.clock[0] += timedelta(minutes=10)
    return await rig.cycle()


async def test_an_invalid_writer_reply_fails_the_task_after_the_bound_and_stops_costing(sq_engine, tmp_path):  # noqa: F811
    assert Settings().review.max_attempts == 2
    rig = bounded(Rig(sq_engine))
    rig.provider.default["writer"] = BROKEN
    first = await rig.cycle()
    [task] = rig.tasks.list()
    assert (task.status, task.attempts, first.failed) == (RESEARCHED, 1, 0)
    assert task.reasons[-1].startswith("attempt 1 failed: invalid model reply (StructuredOutputError at researched")
    second = await next_cycle(rig)
    task = rig.tasks.get(task.id)
    assert (task.status, task.attempts, second.failed) == (FAILED, 2, 1)
    why = task.reasons[-1]
    assert why.startswith("failed after 2 attempt(s) (review.max_attempts = 2): invalid model reply "
                          "(StructuredOutputError at researched: writer: reply did not match WriterOutput")
    assert "not JSON" in why

    # it stops costing: later cycles make no call for it and book nothing
    calls, spent = len(rig.provider.history), task_cost(rig.journal, task.id)
    assert spent == task.cost > 0
    for _ in range(2):
        later = await next_cycle(rig)
        assert later.cost == 0 and later.failed == 0
    assert len(rig.provider.history) == calls and task_cost(rig.journal, task.id) == spent

    # the reason shows where a person looks: the status page's failures and `selfpub drafts list`
    assert "invalid model reply" in failures_table([], rig.tasks.list([FAILED]))
    cfg = tmp_path / "selfpub.toml"  # the rig's database is <tmp_path>/selfpub.db, the state dir's default
    cfg.write_text(f'state_dir = "{tmp_path}"\n')
    out = CliRunner().invoke(app, ["--config", str(cfg), "drafts", "list", "--status", "failed"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert task.id[:12] in out.output and "why: failed after 2 attempt(s)" in out.output
    assert "invalid model reply" in out.output


async def test_a_transient_error_is_retried_and_not_counted(sq_engine):  # noqa: F811
    rig = bounded(Rig(sq_engine))
    rig.provider.default["writer"] = rejected(503)  # every try: the endpoint is down, its circuit opens
    await rig.cycle()
    [task] = rig.tasks.list()
    for _ in range(3):  # more cycles than the bound: never failed, never counted, asked again each cycle
        asked = len(rig.provider.calls("writer"))
        await next_cycle(rig)
        task = rig.tasks.get(task.id)
        assert (task.status, task.attempts) == (RESEARCHED, 0)
        assert task.reasons[-1].startswith("retry later: LLMUnavailable")
        assert len(rig.provider.calls("writer")) > asked
    rig.provider.default["writer"] = BROKEN  # one invalid reply counts, the transient ones before it did not
    await next_cycle(rig)
    assert rig.tasks.get(task.id).attempts == 1
    rig.provider.default["writer"] = writer_reply()  # the model answers: the task goes on
    await next_cycle(rig)
    assert rig.tasks.get(task.id).status == PUBLISHED


async def test_an_invalid_reply_whose_repair_call_fails_transiently_counts_toward_the_bound(sq_engine):  # noqa: F811
    rig = bounded(Rig(sq_engine))
    rig.provider.default["writer"] = rejected(503)  # the repair call meets a down endpoint, every try
    await rig.cycle()  # research; the writer's first reply is the script's default: transient, not counted
    [task] = rig.tasks.list()
    assert rig.tasks.get(task.id).attempts == 0

    # the writer's own repair call fails (503s): the invalid first reply was paid, so the attempt counts
    rig.provider.enqueue("writer", BROKEN)
    spent = task_cost(rig.journal, task.id)
    await next_cycle(rig)
    task = rig.tasks.get(task.id)
    assert (task.status, task.attempts) == (RESEARCHED, 1)
    assert task_cost(rig.journal, task.id) > spent  # the invalid reply cost money
    assert task.reasons[-1].startswith("attempt 1 failed: invalid model reply (")
    assert "then its repair call failed (LLMUnavailable" in task.reasons[-1]

    # the metered client's own repair call fails the same way: counted too, and the bound ends it
    rig.provider.enqueue("writer", BROKEN, BROKEN)
    report = await next_cycle(rig)
    task = rig.tasks.get(task.id)
    assert (task.status, task.attempts, report.failed) == (FAILED, 2, 1)
    assert task.reasons[-1].startswith("failed after 2 attempt(s) (review.max_attempts = 2): invalid model reply (")

    # and it stops costing
    calls = len(rig.provider.history)
    later = await next_cycle(rig)
    assert later.cost == 0 and len(rig.provider.history) == calls
