"""Scenario 1: two settle runs in two processes at once, on a real anvil, on SQLite and PostgreSQL, pay once.

Run B plans and then waits at a barrier (tests.wallet.settle_worker) while run A, another worker
or `selfpub wallet settle` by hand, runs start to finish; then B goes on. Without single-flight
settlement A pays and B, which planned before A's payment existed, pays the same liability again
with the next nonce. With it, A finds the settle lock taken and says so; B pays once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.journal import Entry, Journal, provider_account
from tests.conftest import REPO
from tests.wallet.conftest import AnvilToken, make_journal
from kernel.db import make_engine

pytestmark = pytest.mark.integration
OWED = 7_000_000


def owe(journal: Journal, ucr: int) -> None:
    journal.post("compute", [Entry("expenses:compute:writer", ucr), Entry(provider_account("cloud"), -ucr)],
                 idempotency_key="owed-once")


def worker(config: Path, barrier: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.wallet.settle_worker", str(config), str(barrier), *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cli_settle(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config), "wallet", "settle"],
                          cwd=REPO, capture_output=True, text=True, timeout=180, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1",
                                                                                      "COLUMNS": "200"})


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"run B ended before planning: {out}\n{err[-3000:]}")
        assert time.monotonic() < deadline, "run B never planned"
        time.sleep(0.05)


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def setup(anvil_token: AnvilToken, db_url: str, tmp_path: Path):  # noqa: ANN201
    engine = make_engine(db_url)
    journal = make_journal(engine)
    anvil_token.mint(anvil_token.agent, 50_000_000)
    owe(journal, OWED)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    yield anvil_token, journal, anvil_token.config(tmp_path, db_url), barrier
    engine.dispose()


def test_scenario_1_overlapping_settles_pay_once(setup) -> None:  # noqa: ANN001
    token, journal, config, barrier = setup
    b = worker(config, barrier, "--pause-after-plan")
    wait_for(barrier / "planned", b)
    a = finish(worker(config, barrier))  # run A, start to finish, while B holds its plan
    (barrier / "go").write_text("")
    b_report = finish(b)
    assert token.balance_of(token.payee) == token.units(OWED)  # paid exactly once
    assert a["busy"] and "another settle is running" in a["note"] and a["paid"] == []
    assert [p[0] for p in b_report["paid"]] == ["confirmed"]
    assert journal.balance(provider_account("cloud")) == 0


def test_scenario_1_settle_by_hand_while_the_daemon_settles_pays_once(setup) -> None:  # noqa: ANN001
    token, journal, config, barrier = setup
    b = worker(config, barrier, "--pause-after-plan")  # the daemon's settle job
    wait_for(barrier / "planned", b)
    by_hand = cli_settle(config)
    (barrier / "go").write_text("")
    b_report = finish(b)
    assert token.balance_of(token.payee) == token.units(OWED)  # paid exactly once
    assert by_hand.returncode == 0, by_hand.stderr[-3000:]
    assert "another settle is running" in by_hand.stdout and "Traceback" not in by_hand.stderr
    assert [p[0] for p in b_report["paid"]] == ["confirmed"]
    assert journal.balance(provider_account("cloud")) == 0
