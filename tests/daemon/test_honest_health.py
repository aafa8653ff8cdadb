"""Honest health, on real processes: a cycle whose dependency fails is failed or degraded everywhere it shows.

    `selfpub cycle`      exit 3 (failed: a dependency failed, nothing stored), 4 (degraded), with the reason;
                         the feed `selfpub init` writes, served by nothing, fails a cycle
    `selfpub run`        /healthz 503 "degraded: ...", /metrics counters and last-success gauges, STATUS=,
                         the status page, error-level log lines (what the README's jq filter selects);
                         all of it back to ok when the dependency comes back
    SIGKILL              the job run it cut short is marked interrupted at the next start, and counted
    SIGTERM while paused a clean stop: exit 0 and no error line (repeated: it was a race)
    deposit / reload     a paused daemon re-evaluates the pause at once and resumes

The real orchestrator runs against a local feed server and an OpenAI-compatible stand-in;
"unreachable" is a port nothing listens on.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tests.agents.feeds_support import FeedServer, rss
from tests.daemon.conftest import REPO
from tests.e2e.support import fooled_model
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.timeout(180)

ITEMS = [("Rust 2 release notes", "/a/rust", "The Rust project ships a new compiler with faster builds."),
         ("Postgres planner change", "/a/pg", "The PostgreSQL planner now reorders joins by cost estimates.")]


def free_port() -> int:
    """A port nothing listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(root: Path, llm_url: str, feed_urls: list[str], *, items: int = 1, extra: str = "") -> Path:
    roles = "".join(
        f'[agents.{r}]\nbase_url = "{llm_url}"\nmodel = "fake-model"\nmax_retries = 0\ntimeout_seconds = 10\n'
        for r in ("orchestrator", "research", "writer", "critic"))
    feeds = "".join(f'[[feeds]]\nurl = "{u}"\n' for u in feed_urls)
    path = root / "selfpub.toml"
    path.write_text(
        f'state_dir = "{root / "state"}"\n'
        '[budget]\nmin_balance = "0.1"\nresume_balance = "0.2"\n'
        '[prices."fake-model"]\ninput_per_million = "2"\noutput_per_million = "6"\nprovider = "fake"\n'
        + roles +
        # llm_brief_min_chars = 1 and brief = "model": the research step asks the model (short items would not
        # need it, and by default the writer would read the items itself)
        f'[research]\nitems_per_cycle = {items}\nllm_brief_min_chars = 1\nbrief = "model"\nfetch_timeout_seconds = 5\n'
        '[review]\nmax_revisions = 0\n[publishers.local]\nenabled = true\n'
        '[http]\nport = 0\n[logging]\nformat = "json"\n' + extra + feeds
    )
    return path


def selfpub(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False, env=env)


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric(body: str, name: str, labels: str = "") -> float | None:
    """The value of one sample in a Prometheus text exposition (None when absent)."""
    m = re.search(rf"^{re.escape(name)}{re.escape('{' + labels + '}' if labels else '')} (\S+)$", body, re.M)
    return float(m.group(1)) if m else None


def errors_in(lines: list[dict]) -> list[dict]:
    """What `jq 'select(.level=="error" or .level=="critical")'` selects."""
    return [r for r in lines if r.get("level") in ("error", "critical")]


def wait_until(predicate, timeout: float = 30, every: float = 0.2):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def draining(listener) -> None:  # noqa: ANN001
    """Read the notify socket all the time, as systemd does (a full datagram queue would block the daemon)."""

    def loop() -> None:
        while True:
            try:
                listener.drain()
            except OSError:
                return  # closed at the end of the test
            time.sleep(0.05)

    threading.Thread(target=loop, daemon=True).start()


# -- `selfpub cycle` exit codes -----------------------------------------------------------------


def test_cycle_exits_non_zero_when_a_dependency_fails(tmp_path) -> None:
    feeds = FeedServer().start()
    llm = FakeOpenAI(default=fooled_model("", writer_payload=False))
    dead_llm = f"http://127.0.0.1:{free_port()}/v1"
    try:
        good = feeds.add("/feed.xml", rss(*[(t, feeds.url(p), s) for t, p, s in ITEMS]))
        missing = feeds.url("/gone.xml")  # 404
        config = write_config(tmp_path, dead_llm, [good])
        assert selfpub(config, "ledger", "deposit", "20").returncode == 0

        # the model endpoint unreachable: nothing stored -> failed, exit 3, the reason names the endpoint
        down = selfpub(config, "cycle")
        assert down.returncode == 3, down.stdout + down.stderr
        assert f"cycle failed: model endpoint failed: {dead_llm}" in down.stderr.replace("\n", "")

        # the model back, one of two feeds gone: the cycle moves, but says so -> degraded, exit 4
        with llm.serve() as llm_url:
            write_config(tmp_path, llm_url, [good, missing], items=2)
            partly = selfpub(config, "cycle")
        assert partly.returncode == 4, partly.stdout + partly.stderr
        assert "cycle degraded: 1 of 2 feed(s) failed" in partly.stderr.replace("\n", "")
        assert "/gone.xml" in partly.stderr.replace("\n", "")
    finally:
        feeds.stop()


def test_the_feed_selfpub_init_writes_does_not_read_as_ok(tmp_path) -> None:
    """The example feed (127.0.0.1:8799) is served by nothing: a cycle on the fresh config fails and says why."""
    home = tmp_path / "etc"
    assert subprocess.run([sys.executable, "-m", "daemon.cli", "init", str(home)], cwd=REPO,
                          capture_output=True, check=False).returncode == 0
    config = home / "selfpub.toml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFPUB_")}
    dead = f"http://127.0.0.1:{free_port()}/v1"
    for role in ("ORCHESTRATOR", "RESEARCH", "WRITER", "CRITIC"):  # no embedded model server for this test
        env[f"SELFPUB_AGENTS__{role}__BASE_URL"] = dead
    assert selfpub(config, "ledger", "deposit", "5", env=env).returncode == 0
    done = selfpub(config, "cycle", env=env)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "every feed failed: http://127.0.0.1:8799/feed.xml" in done.stderr.replace("\n", "")


# -- `selfpub run` under a failing dependency, and back ----------------------------------------


def test_daemon_health_metrics_status_and_page_follow_failing_dependencies(tmp_path, spawn, notify_listener) -> None:
    feeds = FeedServer().start()
    llm = FakeOpenAI(default=fooled_model("", writer_payload=False))
    port = free_port()
    llm_url = f"http://127.0.0.1:{port}/v1"
    try:
        feed_url = feeds.url("/feed.xml")  # 404 until the route is added
        config = write_config(tmp_path, llm_url, [feed_url],
                              extra="[schedule]\nstalled_after_cycles = 2\n")
        assert selfpub(config, "ledger", "deposit", "20").returncode == 0
        d = spawn(config, "--fast-seconds", "1.5", env={"NOTIFY_SOCKET": notify_listener.path})
        draining(notify_listener)
        http = d.port()

        # 1. every feed failing: failed cycles; after 2 of them the daemon says it makes no progress
        d.wait_log(lambda r: r.get("msg") == "no useful progress", timeout=60)
        code, body = get(http, "/healthz")
        assert code == 503 and body.startswith("degraded: no useful progress in 2 cycle(s) in a row; "
                                               "last cycle failed: every feed failed: " + feed_url), body
        code, m = get(http, "/metrics")
        assert metric(m, "selfpub_cycles_total", 'outcome="failed"') >= 2
        assert metric(m, "selfpub_feed_failures_total", f'feed="{feed_url}"') >= 2
        assert metric(m, "selfpub_cycles_without_progress") >= 2 and metric(m, "selfpub_degraded") == 1
        assert "# TYPE selfpub_cycles_total counter" in m and "# HELP selfpub_feed_failures_total" in m
        assert metric(m, "selfpub_cycle_last_success_timestamp_seconds") is None
        page = get(http, "/")[1]
        assert "DEGRADED" in page and "no useful progress" in page and "every feed failed" in page
        notify_listener.wait_for(lambda s: "STATUS=DEGRADED (no useful progress in 2 cycle(s)" in s)
        errors = errors_in(d.lines())
        assert {"feed failed", "cycle failed: no progress, a dependency failed", "no useful progress"} <= {
            r["msg"] for r in errors}
        assert not [r for r in errors if "Traceback" in str(r.get("exc", ""))]

        # 2. the feed back, the model still unreachable: failed because of the model
        feeds.add("/feed.xml", rss(*[(t, feeds.url(p), s) for t, p, s in ITEMS]))
        rec = d.wait_log(lambda r: r.get("msg") == "model endpoint failed", timeout=60)
        assert rec["endpoint"] == llm_url and rec["level"] == "error"
        # 3. the model back on the same port: the next cycles work, and everything says ok again
        #    (a longer stall threshold from here: once the two items are worked, cycles find nothing new)
        config.write_text(config.read_text().replace("stalled_after_cycles = 2", "stalled_after_cycles = 50"))
        d.signal(signal.SIGHUP)
        d.wait_log(lambda r: r.get("msg") == "config reloaded")
        with llm.serve(port=port):
            d.wait_log(lambda r: r.get("msg") == "cycle finished" and r.get("outcome") == "ok", timeout=60)
            assert wait_until(lambda: get(http, "/healthz") == (200, "ok\n"))
            m = get(http, "/metrics")[1]
            assert metric(m, "selfpub_llm_failures_total", f'endpoint="{llm_url}"') >= 1
            assert metric(m, "selfpub_cycle_last_success_timestamp_seconds") > time.time() - 120
            assert metric(m, "selfpub_feed_last_success_timestamp_seconds", f'feed="{feed_url}"') > time.time() - 120
            assert metric(m, "selfpub_publish_failures_total", 'platform="local"') == 0  # known platforms start at 0
            assert metric(m, "selfpub_cycles_total", 'outcome="ok"') >= 1 and metric(m, "selfpub_degraded") == 0
            assert "RUNNING" in get(http, "/")[1]
            notify_listener.wait_for(lambda s: s.startswith("STATUS=RUNNING | ") and " ok" in s)
            d.signal(signal.SIGTERM)
            assert d.wait(30) == 0
    finally:
        feeds.stop()


# -- crashes, stops and the pause ----------------------------------------------------------------


def fake_config(root: Path, min_balance: str = "1", resume_balance: str = "2") -> Path:
    path = root / "selfpub.toml"
    path.write_text(f'state_dir = "{root / "state"}"\n[http]\nport = 0\n'
                    f'[budget]\nmin_balance = "{min_balance}"\nresume_balance = "{resume_balance}"\n')
    return path


def test_job_runs_cut_short_by_sigkill_are_marked_interrupted_and_counted(tmp_path, spawn) -> None:
    state = tmp_path / "state"
    config = fake_config(tmp_path)
    assert selfpub(config, "ledger", "deposit", "10").returncode == 0
    started = state / "fake-cycles.jsonl"
    for n in (1, 2):  # a long cycle, killed mid-way, twice
        d = spawn(config, "--fake-cycle-seconds", "60")
        wait_until(lambda: (started.exists() and started.read_text().count('"event": "start"') >= n)
                   or d.proc.poll() is not None, timeout=60, every=0.05)
        d.proc.send_signal(signal.SIGKILL)
        d.wait(10)
    # the second start marked the first kill's run; this one marks the second's
    d = spawn(config, "--fake-cycle-seconds", "0.2")
    rec = d.wait_log(lambda r: r.get("msg") == "job runs left running by a dead process marked interrupted")
    assert rec["marked"] == 1 and rec["interrupted_total"] == 2
    http = d.port()
    assert metric(get(http, "/metrics")[1], "selfpub_job_runs_interrupted_total") == 2
    page = get(http, "/")[1]
    assert "interrupted job runs<b>2</b>" in page and "interrupted" in page
    with sqlite3.connect(state / "selfpub.db") as conn:
        rows = dict(conn.execute("SELECT outcome, COUNT(*) FROM daemon_job_run WHERE job = 'cycle' GROUP BY outcome"))
    assert rows.get("interrupted") == 2 and rows.get("running", 0) <= 1, rows  # at most the live daemon's own
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0


def test_sigterm_right_after_start_while_paused_stops_cleanly(tmp_path, spawn) -> None:
    """SIGTERM while the first (paused) cycle job is still in flight: it used to log the cancellation as an error."""
    config = fake_config(tmp_path)
    assert selfpub(config, "ledger", "deposit", "0.5").returncode == 0  # under min_balance: paused
    for delay in (0.0, 0.005, 0.01, 0.02, 0.05):
        d = spawn(config, "--fake-cycle-seconds", "0.2")
        # the scheduler has started (the first cycle job is due now) when the status server listens
        wait_until(lambda: '"status server listening"' in d.text() or d.proc.poll() is not None, timeout=60,
                   every=0.002)
        time.sleep(delay)
        d.signal(signal.SIGTERM)
        assert d.wait(30) == 0
        lines = d.lines()
        assert any(r.get("msg") == "service stopped" for r in lines)
        assert errors_in(lines) == [], (delay, errors_in(lines))
        assert "CancelledError" not in d.text() and "Traceback" not in d.text()


def test_deposit_and_reload_re_evaluate_the_pause_at_once(tmp_path, spawn, notify_listener) -> None:
    state = tmp_path / "state"
    config = fake_config(tmp_path)
    assert selfpub(config, "ledger", "deposit", "0.5").returncode == 0
    # no --fast-seconds: the cycle runs every 2 h and the earnings job every 30 min, so only the
    # pause re-evaluation (heartbeat every 1 s under WATCHDOG_USEC=2 s, /healthz, reload) can resume it
    d = spawn(config, "--fake-cycle-seconds", "0.1",
              env={"NOTIFY_SOCKET": notify_listener.path, "WATCHDOG_USEC": "2000000"})
    draining(notify_listener)
    http = d.port()
    code, body = get(http, "/healthz")
    assert code == 503 and body.startswith("paused: available 0.500000 < min_balance 1.000000"), body

    def ends() -> int:
        path = state / "fake-cycles.jsonl"
        return path.read_text().count('"event": "end"') if path.exists() else 0

    def resumed() -> int:
        return len([r for r in d.lines() if r.get("msg") == "state changed" and r.get("to") == "RUNNING"])

    # Every step waits on its condition with a deadline (the machine may be loaded: a CLI start, a
    # heartbeat or a cycle can take seconds), never on a time measured around a subprocess. The deadlines
    # are far below what would resume the daemon otherwise (the earnings job in 30 min, the cycle in 2 h).
    # A reload with lower thresholds resumes at once, and the skipped cycle runs now.
    fake_config(tmp_path, "0.2", "0.4")
    d.signal(signal.SIGHUP)
    wait_until(lambda: resumed() >= 1, timeout=30)
    wait_until(lambda: ends() >= 1, timeout=30)
    wait_until(lambda: get(http, "/healthz") == (200, "ok\n"), timeout=30)
    # and back: the old thresholds pause it again at the reload (also while the resume's refresh still runs)
    fake_config(tmp_path)
    d.signal(signal.SIGHUP)
    wait_until(lambda: get(http, "/healthz")[0] == 503, timeout=30)

    # a deposit by another process: resumed by a heartbeat or /healthz, without a restart
    assert selfpub(config, "ledger", "deposit", "2").returncode == 0
    wait_until(lambda: resumed() >= 2, timeout=30)
    wait_until(lambda: get(http, "/healthz") == (200, "ok\n"), timeout=30)
    wait_until(lambda: ends() >= 2, timeout=30)
    notify_listener.wait_for(lambda s: s.startswith("STATUS=RUNNING | balance 2.500000 cr"))
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0
