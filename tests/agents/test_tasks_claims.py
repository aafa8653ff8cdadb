"""Task claims: a token fences every write, a lease is renewed while a step runs, a lost claim writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from agents.tasks import (
    APPROVED,
    DRAFTED,
    HELD,
    PLANNED,
    REJECTED,
    RESEARCHED,
    ClaimLost,
    InvalidTransition,
    TaskBusy,
    TaskStore,
)
from kernel.db import make_engine
from tests.fakes.scripted_llm import sample_brief, sample_item

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def clocked(engine):
    """A task store on SQLite and PostgreSQL with a clock the test moves."""
    clock = [T0]
    store = TaskStore(engine, clock=lambda: clock[0], lease=timedelta(minutes=2))
    store.migrate()
    return store, clock


def test_scenario_12_a_renewed_lease_is_never_taken_over(clocked):
    store, clock = clocked
    t = store.create(cycle_id="c1", items=[sample_item()])
    mine = store.claim(PLANNED, "w1")
    for _ in range(10):  # a step that runs for 10 minutes, renewing every minute
        clock[0] += timedelta(minutes=1)
        store.renew(mine.claim)
        assert store.claim(PLANNED, "w2") is None
    mine.messages.brief = sample_brief()
    assert store.advance(mine, RESEARCHED).status == RESEARCHED
    assert store.get(t.id).claimed_by == "w1"


def test_scenario_12_advance_checks_the_claim_holder(clocked):
    store, clock = clocked
    store.create(cycle_id="c1", items=[sample_item()])
    old = store.claim(PLANNED, "w1")
    clock[0] += timedelta(minutes=3)  # w1 hung: its lease ran out without a renewal
    new = store.claim(PLANNED, "w2")
    assert new is not None and new.id == old.id and new.claim.token != old.claim.token
    old.messages.brief = sample_brief()
    with pytest.raises(ClaimLost) as lost:
        store.advance(old, RESEARCHED)  # the hung worker wakes up and tries to save its step
    assert lost.value.holder == "w2"
    with pytest.raises(ClaimLost):
        store.note(old, reason="attempt 1 failed", attempts=1)
    with pytest.raises(ClaimLost):
        store.renew(old.claim)
    assert not store.release(old.claim)
    stored = store.get(old.id)
    assert (stored.status, stored.claimed_by, stored.attempts, stored.messages.brief) == (PLANNED, "w2", 0, None)
    new.messages.brief = sample_brief()
    assert store.advance(new, RESEARCHED).claim == new.claim  # the holder writes, and keeps its claim


def test_a_released_claim_is_lost_and_a_final_status_releases(clocked):
    store, _ = clocked
    t = store.create(cycle_id="c1", items=[sample_item()], claimed_by="w1")
    assert t.claim is not None and t.claim.worker == "w1"
    assert store.release(t.claim)
    with pytest.raises(ClaimLost) as lost:
        store.advance(t, RESEARCHED)
    assert lost.value.holder is None
    again = store.claim(PLANNED, "w1")
    rejected = store.advance(again, REJECTED, reason="off topic")
    assert rejected.claim is None and store.get(t.id).claimed_by is None


def test_a_person_cannot_change_a_task_a_worker_holds_until_its_lease_ends(clocked):
    store, clock = clocked
    t = store.create(cycle_id="c1", items=[sample_item()])
    store.advance(t, HELD, held_until=T0 + timedelta(hours=5))
    store.approve(t.id)
    publishing = store.claim(APPROVED, "w1")
    with pytest.raises(TaskBusy):
        store.reject(t.id, "changed my mind")  # the draft is being published right now
    clock[0] += timedelta(minutes=3)  # the publisher died
    assert store.reject(t.id, "changed my mind").status == REJECTED
    with pytest.raises(ClaimLost):
        store.advance(publishing, DRAFTED)


def test_a_wrong_status_is_still_an_invalid_transition_for_the_holder(clocked):
    store, _ = clocked
    store.create(cycle_id="c1", items=[sample_item()])
    t = store.claim(PLANNED, "w1")
    with pytest.raises(InvalidTransition):
        store.advance(t, DRAFTED, expect=RESEARCHED)


def test_the_migration_releases_claims_made_without_a_token(tmp_path):
    """A database from before the claim token: its claims are given back, so the next cycle claims them with one."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from agents.tasks import MIGRATIONS, VERSION_TABLE

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes.update(connection_engine=engine, version_table=VERSION_TABLE, configure_logger=False)
    command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO task (id, persona, cycle_id, status, feed_url, item_url, content_hash, arm, novelty, "
            "messages, cost, explanation, reasons, attempts, claimed_by, claimed_at, created_at, updated_at) VALUES "
            "('t1', 'default', 'c', 'planned', '', 'u', 'h', '', 1.0, '{}', 0, '', '[]', 0, 'w-old', "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
    store = TaskStore(engine)
    store.migrate()
    assert store.get("t1").claimed_by is None
    assert store.claim(PLANNED, "w-new").claim.task_id == "t1"
    engine.dispose()
