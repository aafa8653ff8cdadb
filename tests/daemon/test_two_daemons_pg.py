"""Two daemons on one PostgreSQL database: a persona's cycles never overlap (advisory lock)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.daemon.conftest import REPO, write_config

pytestmark = pytest.mark.postgres


def test_two_daemons_never_run_a_personas_cycle_at_the_same_time(tmp_path, spawn, pg_url) -> None:
    state = tmp_path / "state"
    persona = f"p{uuid.uuid4().hex[:8]}"
    config = write_config(tmp_path / "selfpub.toml", state,
                          f'[database]\nurl = "{pg_url}"\n').with_name("selfpub.toml")
    config.write_text(f'persona = "{persona}"\n' + config.read_text())
    subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config), "ledger", "deposit", "10"],
                   cwd=REPO, check=True, capture_output=True)
    # 0.8 s cycles, ticking every 0.25 s and 0.35 s: they contend all the time, and the
    # different ticks let both win now and then (in production the schedule's jitter does that)
    a = spawn(config, "--fake-cycle-seconds", "0.8", "--fast-seconds", "0.25", name="a")
    b = spawn(config, "--fake-cycle-seconds", "0.8", "--fast-seconds", "0.35", name="b")
    log = state / "fake-cycles.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ends = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
        ends = [e for e in ends if e["event"] == "end"]
        if len(ends) >= 8 and len({e["pid"] for e in ends}) == 2 or a.proc.poll() is not None or b.proc.poll() is not None:
            break
        time.sleep(0.2)
    for d in (a, b):
        d.signal(signal.SIGTERM)
    assert a.wait(30) == 0 and b.wait(30) == 0
    ends = [e for e in (json.loads(x) for x in log.read_text().splitlines()) if e["event"] == "end"]
    assert len(ends) >= 8
    assert {e["pid"] for e in ends} == {a.proc.pid, b.proc.pid}  # both took turns
    spans = sorted((e["start"], e["t"], e["pid"]) for e in ends)
    for (s1, e1, p1), (s2, e2, p2) in zip(spans, spans[1:]):
        assert s2 >= e1, f"cycles overlap: {p1} ran {s1}..{e1}, {p2} started {s2}"
    skipped = [r for d in (a, b) for r in d.lines()
               if r.get("msg") == "cycle skipped: another instance runs this persona's cycle"]
    assert skipped, "the lock was never contended; the test proves nothing"
