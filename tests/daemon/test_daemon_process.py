"""`selfpub run` as a real subprocess (tests/daemon/run_daemon.py when a fake cycle is asked for): systemd notify,
SIGTERM mid-cycle, SIGHUP reload, pause/resume, HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.daemon.conftest import REPO, write_config


def _deposit(config: Path, amount: str) -> None:
    subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config), "ledger", "deposit", amount],
                   cwd=REPO, check=True, capture_output=True)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _cycles(state: Path) -> list[dict]:
    path = state / "fake-cycles.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_daemon_notifies_ready_status_and_watchdog(tmp_path, spawn, notify_listener) -> None:
    config = write_config(tmp_path / "selfpub.toml", tmp_path / "state")
    _deposit(config, "10")
    d = spawn(config, "--fake-cycle-seconds", "0.4",
              env={"NOTIFY_SOCKET": notify_listener.path, "WATCHDOG_USEC": "1000000"})
    ready = notify_listener.wait_for(lambda m: "READY=1" in m)
    assert "STATUS=RUNNING" in ready and "balance 10.000000 cr" in ready
    status = notify_listener.wait_for(lambda m: m.startswith("STATUS=") and "last cycle 2" in m and " ok" in m)
    assert "runway" in status
    # WATCHDOG_USEC = 1 s: a ping every 0.5 s, so several arrive within 2 s
    time.sleep(2)
    pings = [m for m in notify_listener.drain() if m == "WATCHDOG=1"]
    assert len(pings) >= 3
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0
    assert any(m.startswith("STOPPING=1") for m in notify_listener.drain())


def test_sigterm_mid_cycle_exits_0_and_the_next_start_resumes_the_task(tmp_path, spawn) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path / "selfpub.toml", state)
    _deposit(config, "10")
    # an 8 s cycle of 4 steps; SIGTERM after the first step, with 1 s of grace: abandoned, not finished
    d = spawn(config, "--fake-cycle-seconds", "8", "--stop-grace", "1")
    deadline = time.monotonic() + 60  # start-up can be slow on a busy 2-core box
    while not (state / "fake-task.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    task = json.loads((state / "fake-task.json").read_text())
    assert task["step"] == 1
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0
    assert time.monotonic() - t0 < 10
    assert [c["event"] for c in _cycles(state)] == ["start"]  # it never finished
    d.wait_log(lambda r: r.get("msg") == "abandoning the cycle in flight; the next start resumes it")

    d2 = spawn(config, "--fake-cycle-seconds", "2")
    deadline = time.monotonic() + 30
    while len([c for c in _cycles(state) if c["event"] == "end"]) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    end = [c for c in _cycles(state) if c["event"] == "end"][0]
    assert end["task"] == task["task"] and end["from_step"] == 1  # the same task, from where it stopped
    d2.signal(signal.SIGTERM)
    assert d2.wait(30) == 0


def test_sighup_with_a_broken_config_keeps_running_on_the_old_one(tmp_path, spawn, notify_listener) -> None:
    config = write_config(tmp_path / "selfpub.toml", tmp_path / "state")
    _deposit(config, "10")
    d = spawn(config, "--fake-cycle-seconds", "0.2", env={"NOTIFY_SOCKET": notify_listener.path})
    notify_listener.wait_for(lambda m: "READY=1" in m)
    port = d.port()
    good = config.read_text()
    config.write_text(good + "\n[schedule]\ninterval_minutes = -5\nbogus_key = 1\n")
    d.signal(signal.SIGHUP)
    notify_listener.wait_for(lambda m: m.startswith("RELOADING=1"))
    after = notify_listener.wait_for(lambda m: "config reload failed" in m)
    assert "READY=1" in after and "previous config" in after
    problems = [r for r in d.lines() if r.get("msg") == "config reload problem"]
    assert {p["key"] for p in problems} >= {"schedule.interval_minutes", "schedule.bogus_key"}
    assert d.proc.poll() is None
    assert _get(port, "/healthz")[0] == 200
    assert "config reload failed" in _get(port, "/")[1]
    # a good config again is taken
    config.write_text(good)
    d.signal(signal.SIGHUP)
    d.wait_log(lambda r: r.get("msg") == "config reloaded")
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0


def test_pause_below_min_balance_and_resume_after_a_deposit(tmp_path, spawn) -> None:
    config = write_config(tmp_path / "selfpub.toml", tmp_path / "state")
    _deposit(config, "2.5")
    # each cycle spends 1 credit: 2.5 -> 1.5 -> 0.5 (< min 1): paused; resume needs 2
    d = spawn(config, "--fake-cycle-seconds", "0.1", "--fake-cycle-cost", "1", "--fast-seconds", "0.5")
    port = d.port()
    d.wait_log(lambda r: r.get("msg") == "state changed" and r.get("to") == "PAUSED")
    time.sleep(1.5)  # stays paused: no cycle spends while paused
    code, body = _get(port, "/healthz")
    assert code == 503 and body.startswith("paused: available 0.500000 < min_balance 1.000000")
    assert len([c for c in _cycles(tmp_path / "state") if c["event"] == "end"]) == 2
    _deposit(config, "1")  # 1.5: above min, under resume_balance: hysteresis keeps it paused
    time.sleep(1.5)
    assert _get(port, "/healthz")[0] == 503
    _deposit(config, "1")  # 2.5 >= resume_balance: the earnings job's evaluate resumes it
    d.wait_log(lambda r: r.get("msg") == "state changed" and r.get("to") == "RUNNING", timeout=15)
    deadline = time.monotonic() + 15
    while len([c for c in _cycles(tmp_path / "state") if c["event"] == "end"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0
    ends = [c for c in _cycles(tmp_path / "state") if c["event"] == "end"]
    assert len(ends) >= 3  # cycles run again after the resume


def test_status_server_answers_on_127_0_0_1_and_refuses_other_methods(tmp_path, spawn) -> None:
    config = write_config(tmp_path / "selfpub.toml", tmp_path / "state")
    _deposit(config, "10")
    d = spawn(config, "--fake-cycle-seconds", "0.2")
    rec = d.wait_log(lambda r: r.get("msg") == "status server listening")
    assert rec["bind"] == "127.0.0.1"
    port = int(rec["port"])
    assert _get(port, "/healthz") == (200, "ok\n")
    code, metrics = _get(port, "/metrics")
    assert code == 200 and "selfpub_balance_credits 10.0" in metrics and "selfpub_paused 0.0" in metrics
    code, page = _get(port, "/")
    assert code == 200 and "<svg" in page and "RUNNING" in page
    req = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", method="POST", data=b"x")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("POST was accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 405 and exc.headers["Allow"] == "GET"
    assert _get(port, "/nope")[0] == 404
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0


def test_selfpub_run_has_no_test_only_options() -> None:
    """The fake cycle and fast intervals live in tests/ (run_daemon.py), not behind hidden options of the command."""
    from typer.testing import CliRunner

    from daemon.cli import app

    for option in ("--fake-cycle-seconds", "--fake-cycle-cost", "--fast-seconds"):
        result = CliRunner().invoke(app, ["run", option, "1"])
        assert result.exit_code == 2 and "No such option" in result.output, (option, result.output)
