"""The task list (agents.task_rows.list_tasks: TaskStore.list and `selfpub drafts list`) reads what the Core table reads.

list_lines, what `drafts list` prints, is list_tasks' tasks as lines: the latest draft's title read from
the stored JSON without building the messages (no pydantic), the item's URL before any draft.

The statement runs on a raw DB-API cursor, on SQLAlchemy's engine (SQLite, PostgreSQL) or on the stdlib sqlite3
(kernel.dbapi.PlainEngine, a read-only command on a SQLite file at head); the oracle is the Core select through
the table's UTCDateTime columns, the way the store read its rows before.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select

from agents.task_rows import DraftLine, list_lines, list_tasks
from agents.tasks import HELD, PLANNED, REJECTED, RESEARCHED, TASK, Task, TaskStore
from kernel.db import make_engine
from kernel.dbapi import PlainEngine, sqlite_file
from tests.fakes.scripted_llm import sample_brief, sample_draft, sample_item

HELD_UNTIL = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
QUERIES = [(None, 50), ([HELD], 50), ([HELD, REJECTED], 50), ([PLANNED, RESEARCHED], 2), (None, 3), ([], 50)]


def _populate(engine: Engine) -> None:
    """Tasks of two personas in several statuses: held with a deadline, rejected with reasons, claimed, scored."""
    store, other = TaskStore(engine, persona="p1"), TaskStore(engine, persona="p2")
    store.migrate()
    for n in range(7):
        t = store.create(cycle_id=f"c{n % 2}", items=[sample_item(n)], arm="f|rust", novelty=0.25 * (n % 4),
                         explanation=f"plan {n}")
        if n % 3 == 0:
            continue
        t.messages.brief = sample_brief()
        t = store.advance(t, RESEARCHED, reason="researched", cost=1_000 * n)
        if n % 3 == 1:
            t.messages.drafts.append(sample_draft())
            t.score = n
            t = store.advance(t, HELD, held_until=HELD_UNTIL + timedelta(hours=n), cost=2_000 * n)
            if n == 4:
                store.reject(t.id, "off topic")
    store.claim(PLANNED, "worker-1")  # claimed_by and lease_until set
    other.create(cycle_id="c9", items=[sample_item(99)])


def _core(engine: Engine, persona: str, statuses: list[str] | None, limit: int) -> list[Task]:
    """The Core read the store made before the list moved to the raw cursor."""
    stmt = select(TASK).where(TASK.c.persona == persona)
    if statuses:
        stmt = stmt.where(TASK.c.status.in_(tuple(statuses)))
    with engine.connect() as conn:
        return [Task.from_row(r) for r in conn.execute(stmt.order_by(TASK.c.created_at.desc(), TASK.c.id).limit(limit))]


@pytest.mark.parametrize(("statuses", "limit"), QUERIES)
def test_the_store_lists_what_the_core_table_reads(engine: Engine, statuses: list[str] | None, limit: int) -> None:
    _populate(engine)
    got = TaskStore(engine, persona="p1").list(statuses, limit=limit)
    assert got == _core(engine, "p1", statuses, limit)
    assert got and all(t.persona == "p1" for t in got)


def test_the_plain_list_equals_the_core_read(sqlite_url: str) -> None:
    """On a SQLite file the stdlib sqlite3 reads the same tasks, to the microsecond and the time zone."""
    engine = make_engine(sqlite_url)
    _populate(engine)
    plain = PlainEngine(sqlite_file(sqlite_url))
    try:
        held = list_tasks(plain, "p1", [HELD])
        assert held and all(t.held_until is not None and t.held_until.tzinfo == timezone.utc for t in held)
        assert {t.held_until.microsecond for t in held} == {123456}
        for statuses, limit in QUERIES:
            assert list_tasks(plain, "p1", statuses, limit=limit) == _core(engine, "p1", statuses, limit)
        assert [t.persona for t in list_tasks(plain, "p2")] == ["p2"]
    finally:
        plain.dispose()
        engine.dispose()


def _as_line(t: Task) -> DraftLine:
    """The line `drafts list` printed from a whole task before list_lines."""
    draft = t.messages.draft
    return DraftLine(id=t.id, status=t.status, score=t.score, cost=t.cost,
                     title=draft.title if draft else t.item_url, reasons=tuple(t.reasons), held_until=t.held_until)


def test_the_draft_lines_are_the_listed_tasks_as_drafts_list_shows_them(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    _populate(engine)
    store = TaskStore(engine, persona="p1")
    odd = store.create(cycle_id="c7", items=[sample_item(7)])
    odd.messages.brief = sample_brief()
    odd.messages.drafts += [sample_draft(title="first"), sample_draft(title='Ünïcode "quotes" \\ and\na newline')]
    store.advance(odd, RESEARCHED, reason="two drafts: the latest one's title is listed")
    plain = PlainEngine(sqlite_file(sqlite_url))
    try:
        for reader in (engine, plain):
            for statuses, limit in QUERIES:
                tasks = list_tasks(reader, "p1", statuses, limit=limit)
                assert list_lines(reader, "p1", statuses, limit=limit) == [_as_line(t) for t in tasks]
        titles = {line.title for line in list_lines(plain, "p1")}
        assert 'Ünïcode "quotes" \\ and\na newline' in titles and "first" not in titles
        assert any(title.startswith("http") for title in titles)  # a task with no draft: its item's URL
    finally:
        plain.dispose()
        engine.dispose()
