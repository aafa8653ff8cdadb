"""Two processes, one persona: the daemon's cycle (`selfpub run`) and `selfpub cycle` by hand, on SQLite and PostgreSQL.

The real orchestrator runs in both, against a local feed and the usage-reporting LLM stand-in (each
answer takes a moment), publishing to the local outbox. The test holds the stand-in's answers to make
the two meet for sure (no sleep decides whether they contend; each process has a stand-in of its own,
so the test can hold one's calls and not the other's):

    1. `selfpub cycle` is inside a model call when the daemon starts: the daemon skips its ticks
    2. the daemon is inside a model call: two `selfpub cycle` typed at once are refused by the cycle lock
    3. the daemon finishes the feed, resuming tasks a step per cycle

and asserts:
  - only one cycle acts at a time: each cycle's model calls span a window (first request to last
    answer, on the stand-in's clock) that no other cycle's calls enter;
  - no task advanced twice: each draft was written once and reviewed once (a second draft only where
    the critic asked for one), every task is published, and each has exactly one post in the outbox;
  - every `selfpub cycle` either ran or was refused by the lock; both processes called the model.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections import Counter

import pytest

from tests.agents.feeds_support import FeedServer
from tests.daemon.conftest import REPO, Daemon
from tests.daemon.cycle_support import (
    CR,
    REFUSED_BY_LOCK,
    GatedLLM,
    cli_args,
    cycle_windows,
    fund,
    news_feed,
    overlapping,
    query,
    write_config,
)

pytestmark = pytest.mark.timeout(180)

ITEMS = 4
SKIPPED = "cycle skipped: another instance runs this persona's cycle"
IDLE = "no useful progress"  # the daemon's health says so once the feed is done: not a failure


def by_hand_cycle(config) -> subprocess.Popen:  # noqa: ANN001
    """`selfpub cycle`, started."""
    return subprocess.Popen(cli_args(config, "cycle"), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finished(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def wait_for_a_skipped_tick(daemon: Daemon, llm: GatedLLM, timeout: float) -> None:
    """Return once the daemon skipped a tick; fail as soon as its own cycle reaches its model (`llm`) too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.get("msg") == SKIPPED for r in daemon.lines()):
            return
        if llm.waiting:
            pytest.fail("the daemon's cycle called the model while `selfpub cycle` was inside a model call: "
                        "two cycles of one persona act at once")
        if daemon.proc.poll() is not None:
            pytest.fail(f"the daemon exited ({daemon.proc.returncode}):\n{daemon.text()[-3000:]}")
        time.sleep(0.1)
    pytest.fail("the daemon never skipped a tick while `selfpub cycle` held the persona's cycle:\n"
                + daemon.text()[-3000:])


def published(db_url: str) -> int:
    """How many tasks are published so far."""
    return query(db_url, "SELECT count(*) FROM task WHERE status = 'published'")[0][0]


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_scenario_12_the_daemons_cycle_and_a_cycle_by_hand_never_act_at_once(db, request, tmp_path, spawn) -> None:
    db_url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "pg_url")
    started = time.monotonic()
    feeds = FeedServer().start()
    # one stand-in each, so the test can hold one process's model calls and not the other's
    daemon_llm, hand_llm = GatedLLM(delay=0.2, hold=90), GatedLLM(delay=0.2, hold=90)
    by_hand: list[subprocess.CompletedProcess] = []
    try:
        feed_url = news_feed(feeds, ITEMS)
        with daemon_llm.running(), hand_llm.running():
            persona = f"p{uuid.uuid4().hex[:8]}"
            config = write_config(tmp_path, db_url, daemon_llm.url, feed_url, persona=persona)
            hand = write_config(tmp_path, db_url, hand_llm.url, feed_url, persona=persona, name="by-hand.toml")
            fund(db_url, 20 * CR)

            # 1. a cycle by hand is inside a model call while the daemon starts and ticks
            daemon_llm.gate.clear()  # the daemon's first model call will wait (phase 2)
            hand_llm.gate.clear()
            first = by_hand_cycle(hand)
            assert hand_llm.wait_for_waiting(60), "`selfpub cycle` never called the model"
            daemon = spawn(config, "--fast-seconds", "1")
            wait_for_a_skipped_tick(daemon, daemon_llm, 60)
            hand_llm.gate.set()
            by_hand.append(finished(first))
            assert by_hand[0].returncode == 0, by_hand[0].stdout + by_hand[0].stderr
            marks = [time.monotonic()]

            # 2. the daemon is inside a model call: two cycles typed by hand at once are refused by the lock
            assert daemon_llm.wait_for_waiting(60), "the daemon's cycle never called the model"
            refused = [finished(p) for p in [by_hand_cycle(hand) for _ in range(2)]]
            daemon_llm.gate.set()
            assert all(p.returncode == 1 and REFUSED_BY_LOCK in p.stderr for p in refused), refused
            assert not hand_llm.waiting and len(hand_llm.arrived) == len(hand_llm.answered)
            by_hand += refused
            marks.append(time.monotonic())

            # 3. the daemon finishes the feed, a step per cycle (its fast ticks give each cycle a short deadline)
            deadline = time.monotonic() + 60
            while published(db_url) < ITEMS and time.monotonic() < deadline and daemon.proc.poll() is None:
                time.sleep(0.3)
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(60) == 0, daemon.text()[-3000:]
            marks.append(time.monotonic())
    finally:
        daemon_llm.gate.set()
        hand_llm.gate.set()
        feeds.stop()

    ran = [p for p in by_hand if p.returncode == 0]
    locked = [p for p in by_hand if p.returncode == 1 and REFUSED_BY_LOCK in p.stderr]
    assert len(ran) + len(locked) == len(by_hand), [p.stdout + p.stderr for p in by_hand if p not in ran + locked]
    skipped = [r for r in daemon.lines() if r.get("msg") == SKIPPED]
    failed = [r for r in daemon.lines() if r.get("level") in ("error", "critical") and r.get("msg") != IDLE]
    assert not failed, failed[:3]
    cli_cycles = {line.split()[1] for p in ran for line in p.stdout.splitlines() if line.startswith("cycle ")}
    assert len(cli_cycles) == len(ran)
    print(f"\nphases took {marks[0] - started:.1f} s, {marks[1] - marks[0]:.1f} s, {marks[2] - marks[1]:.1f} s")
    print(f"by hand: {len(ran)} ran, {len(locked)} refused by the lock; the daemon skipped {len(skipped)} tick(s)")

    # only one cycle acts at a time
    windows = cycle_windows(db_url, daemon_llm, hand_llm)
    assert not overlapping(windows), overlapping(windows)
    assert cli_cycles & set(windows) and set(windows) - cli_cycles, "both processes should have called the model"
    assert daemon_llm.answered and hand_llm.answered
    # no task advanced twice: each draft was written once and reviewed once (a second draft only when the
    # critic asked for a revision), every task is published, and each has exactly one post
    calls = query(db_url, "SELECT task_id, role FROM llm_call WHERE outcome = 'ok'")
    per_task = Counter((task, role) for task, role in calls)
    drafts = {task: per_task[(task, "writer")] for task, _role in calls}
    assert all(per_task[(t, "critic")] == n and n in (1, 2) for t, n in drafts.items()), per_task
    revisions = daemon_llm.revisions_asked + hand_llm.revisions_asked
    assert sum(drafts.values()) == ITEMS + revisions, (per_task, revisions)
    tasks = query(db_url, "SELECT id, status FROM task")
    assert len(tasks) == ITEMS and {t.status for t in tasks} == {"published"}, tasks
    # each published task has exactly one post
    rows = query(db_url, "SELECT task_id, platform, status FROM publishers_outbox")
    assert sorted(r.task_id for r in rows) == sorted(t.id for t in tasks) and {r.status for r in rows} == {"done"}
    posts = [p for p in (tmp_path / "state" / "outbox").iterdir() if not p.name.startswith(".")]
    assert len(posts) == ITEMS, [p.name for p in posts]
