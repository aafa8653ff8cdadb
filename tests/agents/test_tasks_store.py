"""Task store: typed messages persisted with the status, transitions guarded, claims exclusive."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from agents.messages import Review
from agents.tasks import (
    APPROVED, DRAFTED, EXPIRED, HELD, PLANNED, REJECTED, RESEARCHED, InvalidTransition, TaskNotFound, TaskStore,
)
from kernel.db import make_engine
from tests.fakes.scripted_llm import sample_brief, sample_item


@pytest.fixture
def store(engine) -> TaskStore:
    s = TaskStore(engine, persona="p1")
    s.migrate()
    return s


def test_messages_round_trip_as_typed_objects(store):
    t = store.create(cycle_id="c1", items=[sample_item()], arm="f|rust", novelty=0.4, explanation="why")
    t.messages.brief = sample_brief()
    t = store.advance(t, RESEARCHED, reason="researched", cost=123)
    again = store.get(t.id)
    assert again.status == RESEARCHED and again.cost == 123 and again.novelty == 0.4
    assert again.messages.brief == sample_brief()
    assert again.messages.items == [sample_item()]
    assert again.reasons == ["researched"] and again.explanation == "why"


def test_advance_refuses_a_task_no_longer_in_the_expected_status(store):
    t = store.create(cycle_id="c1", items=[sample_item()])
    store.advance(t, RESEARCHED)
    with pytest.raises(InvalidTransition):
        store.advance(t, RESEARCHED)  # t still says planned: someone else moved it


def test_approve_and_reject_only_from_held(store):
    t = store.create(cycle_id="c1", items=[sample_item()])
    with pytest.raises(InvalidTransition):
        store.approve(t.id)
    t = store.advance(t, HELD, held_until=datetime.now(timezone.utc) + timedelta(hours=1))
    assert store.approve(t.id[:8]).status == APPROVED
    r = store.reject(t.id, "off topic")
    assert r.status == REJECTED and r.reasons[-1] == "rejected by a person: off topic"
    with pytest.raises(TaskNotFound):
        store.get("nope")


def test_held_drafts_expire_after_their_deadline(store):
    now = datetime.now(timezone.utc)
    t = store.create(cycle_id="c1", items=[sample_item()])
    store.advance(t, HELD, held_until=now + timedelta(hours=2))
    assert store.expire_held(now + timedelta(hours=1)) == []
    assert store.expire_held(now + timedelta(hours=3)) == [t.id]
    assert store.get(t.id).status == EXPIRED


def test_a_claim_is_exclusive_until_released_or_stale(store):
    clock = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    store.clock = lambda: clock[0]
    t = store.create(cycle_id="c1", items=[sample_item()])
    assert store.claim(PLANNED, "w1").id == t.id
    assert store.claim(PLANNED, "w2") is None
    clock[0] += store.lease + timedelta(seconds=1)
    taken = store.claim(PLANNED, "w2")
    assert taken.claimed_by == "w2"  # the first worker crashed: lease taken over
    assert store.release(taken.claim)
    assert store.claim([PLANNED, DRAFTED], "w3").id == t.id


def test_known_items_by_url_or_hash(store):
    store.create(cycle_id="c1", items=[sample_item(1)])
    i2 = sample_item(2)
    assert store.known_items([sample_item(1).url, i2.url], [i2.content_hash]) == {sample_item(1).url}


def test_review_history_survives(store):
    t = store.create(cycle_id="c1", items=[sample_item()])
    t.messages.reviews.append(Review(approved=False, score=3, problems=("x",), fixes=("y",)))
    t = store.advance(t, DRAFTED, expect=PLANNED)
    assert store.get(t.id).messages.reviews[0].fixes == ("y",)


@pytest.mark.postgres
def test_two_claimers_on_postgres_never_get_the_same_task(pg_url):
    engines = [make_engine(pg_url) for _ in range(2)]
    TaskStore(engines[0], persona="p1").migrate()
    seed = TaskStore(engines[0], persona="p1")
    ids = {seed.create(cycle_id="c1", items=[sample_item(i)]).id for i in range(1, 41)}
    got: dict[str, list[str]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def worker(name: str, engine) -> None:
        s = TaskStore(engine, persona="p1")
        barrier.wait()
        while (t := s.claim(PLANNED, name)) is not None:
            got[name].append(t.id)
            s.advance(t, RESEARCHED)  # finishing moves it out of the claimable status

    threads = [threading.Thread(target=worker, args=(n, e)) for n, e in zip(got, engines)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not set(got["a"]) & set(got["b"])
    assert set(got["a"]) | set(got["b"]) == ids
    assert len(got["a"]) + len(got["b"]) == 40
    for e in engines:
        e.dispose()
