"""Claims left by a killed daemon are taken back by its next cycle at once, not after their lease."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from agents.cycle import CycleContext
from agents.tasks import PLANNED, PUBLISHED, RESEARCHED, ClaimLost, TaskStore
from tests.agents.test_orchestrator_cycle import Rig
from tests.fakes.scripted_llm import sample_brief, sample_item

DAEMON_WORKER = "daemon:default"


def killed_mid_cycle(rig: Rig, worker: str) -> str:
    """What SIGKILL leaves: a researched task still claimed by `worker` (no finally block ran)."""
    task = rig.tasks.create(cycle_id="killed", items=[sample_item(1)], claimed_by=worker)
    task.messages.brief = sample_brief()
    rig.tasks.advance(task, RESEARCHED)
    rig.feed.pending = []
    rig.clock[0] += timedelta(minutes=1)  # the restart comes well inside the lease
    assert rig.clock[0] - task.created_at < rig.tasks.lease
    assert rig.tasks.get(task.id).claimed_by == worker
    return task.id


def test_release_all_gives_back_only_this_workers_claims_of_this_persona(sqlite_url: str) -> None:
    from kernel.db import make_engine

    engine = make_engine(sqlite_url)
    store, other = TaskStore(engine), TaskStore(engine, persona="other")
    store.migrate()
    mine = store.create(cycle_id="c", items=[sample_item(1)], claimed_by=DAEMON_WORKER)
    theirs = store.create(cycle_id="c", items=[sample_item(2)], claimed_by="daemon:elsewhere")
    persona = other.create(cycle_id="c", items=[sample_item(3)], claimed_by=DAEMON_WORKER)
    assert store.release_all(DAEMON_WORKER) == 1
    assert store.get(mine.id).claimed_by is None
    assert store.get(theirs.id).claimed_by == "daemon:elsewhere"
    assert store.get(persona.id).claimed_by == DAEMON_WORKER
    assert store.claim(PLANNED, DAEMON_WORKER).id == mine.id
    with pytest.raises(ClaimLost):  # the killed process's own claim was given back: it can write nothing more
        store.advance(mine, RESEARCHED)
    engine.dispose()


async def test_the_next_cycle_of_the_same_worker_resumes_a_task_claimed_by_a_killed_process(engine) -> None:
    rig = Rig(engine)
    tid = killed_mid_cycle(rig, DAEMON_WORKER)
    orchestrator = rig.orchestrator()
    orchestrator.deps.worker = DAEMON_WORKER
    report = await orchestrator.run_cycle(CycleContext.start(rig.clock[0]))
    assert report.resumed == 1 and report.published == 1
    assert rig.roles() == ["writer", "critic"]  # research was done before the kill
    task = rig.tasks.get(tid)
    assert task.status == PUBLISHED and task.claimed_by is None
    assert len(rig.channel.posts) == 1


async def test_a_restarted_daemon_has_the_same_worker_id_and_takes_back_its_claims(
    engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from daemon import wiring, wiring_agents

    rig = Rig(engine)
    monkeypatch.setattr(wiring_agents, "build_deps", lambda *a, **kw: rig.orchestrator().deps)
    killed = wiring.OrchestratorSlot(rig.journal, rig.settings, rig.budget)
    assert killed.current.deps.worker == f"daemon:{rig.settings.persona}" == DAEMON_WORKER
    tid = killed_mid_cycle(rig, killed.current.deps.worker)

    restarted = wiring.OrchestratorSlot(rig.journal, rig.settings, rig.budget)
    assert restarted.current.deps.worker == killed.current.deps.worker
    report = await restarted.cycle(CycleContext("c2", rig.clock[0], threading.Event()))
    assert report.cycle_id == "c2"  # the caller's cycle id, not one of the orchestrator's own
    assert report.resumed == 1 and rig.tasks.get(tid).status == PUBLISHED
