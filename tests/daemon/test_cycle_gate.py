"""One door into a cycle for the daemon, `selfpub cycle` and the demo: the gate (with the wallet's pause
reason and stale holds expired) and the persona's cycle lock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kernel.db import make_engine
from config.loader import load_settings
from daemon import models as daemon_models
from daemon.cli import app
from daemon.lock import CycleLock
from daemon.notify import Notifier
from daemon.service import Jobs, Service, State
from daemon.status import StatusReader
from daemon.wiring import build_service, error_policy
from ledger.budget import Budget
from ledger.funding import deposit
from ledger.journal import Journal

CR = 1_000_000
DEAD_URL = "http://127.0.0.1:9"  # nothing listens on the discard port: connections are refused at once
TOKEN = "0x" + "11" * 20


def write_config(root: Path, db_url: str | None = None, extra: str = "") -> Path:
    """A config whose cycle has no feeds (it does nothing, quickly) and whose models are never reached."""
    roles = "".join(f'[agents.{r}]\nbase_url = "{DEAD_URL}/v1"\nmodel = "fake-model"\nmax_retries = 0\n'
                    for r in ("orchestrator", "research", "writer", "critic"))
    database = f'[database]\nurl = "{db_url}"\n' if db_url else ""
    path = root / "selfpub.toml"
    path.write_text(
        f'state_dir = "{root / "state"}"\n'
        '[budget]\nmin_balance = "1"\nresume_balance = "2"\nper_cycle_cap = "5"\nreservation_ttl_seconds = 60\n'
        '[prices."fake-model"]\ninput_per_million = "2"\noutput_per_million = "6"\nprovider = "fake"\n'
        '[http]\nenabled = false\n' + database + roles + extra
    )
    return path


def cli(config: Path, *args: str):  # noqa: ANN201
    return CliRunner().invoke(app, ["--config", str(config), *args], catch_exceptions=False)


def stale_wallet(root: Path, max_staleness_seconds: int = 1) -> str:
    """[wallet] on a JSON-RPC node that is down (keystore included, as evm mode requires)."""
    from tests.e2e.standins import write_light_keystore

    (root / "secrets").mkdir(exist_ok=True)
    password = root / "secrets" / "keystore-password"
    password.write_text("correct horse battery staple\n")
    password.chmod(0o600)
    address = write_light_keystore(root / "secrets" / "keystore.json", "correct horse battery staple")
    return (f'[wallet]\nmode = "evm"\nrpc_url = "{DEAD_URL}"\nchain_id = 31337\ntoken_address = "{TOKEN}"\n'
            f'address = "{address}"\nkeystore_file = "{root / "secrets" / "keystore.json"}"\n'
            f'keystore_password_file = "{password}"\n'
            f'max_staleness_seconds = {max_staleness_seconds}\nrpc_timeout_seconds = 1\n')


def chain_failing_since(engine, when: datetime) -> None:  # noqa: ANN001
    """What a daemon records when its node stopped answering at `when` (wallet_sync)."""
    from wallet.sync import SyncClock
    from wallet.wallets import migrate

    migrate(engine)
    SyncClock(engine, 31337, stale_after_seconds=1, max_staleness_seconds=1, clock=lambda: when).failed("connect: refused")


# -- scenario 12: `selfpub cycle` goes through the daemon's door -------------------------------------------


def test_scenario_12_cycle_by_hand_takes_the_cycle_lock(db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, db_url)
    settings = load_settings(config, {})
    engine = make_engine(settings.database_url)
    journal = Journal(engine)
    journal.migrate()
    deposit(journal, 10 * CR)
    daemon_lock = CycleLock(make_engine(settings.database_url), settings.persona, settings.state_dir)
    assert daemon_lock.acquire()  # the daemon is in the middle of this persona's cycle
    try:
        out = cli(config, "cycle")
        assert out.exit_code == 1, out.output
        assert "cycle refused" in out.output and "another process runs persona 'default'" in out.output
    finally:
        daemon_lock.release()
        daemon_lock.engine.dispose()
    out = cli(config, "cycle")  # the daemon's cycle ended: now it runs, and gives the lock back
    assert out.exit_code == 0 and "RAN" in out.output, out.output
    assert CycleLock(engine, settings.persona, settings.state_dir).acquire()
    engine.dispose()


async def test_scenario_12_cycle_by_hand_is_refused_while_the_daemon_is_paused_for_a_stale_chain(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra=stale_wallet(tmp_path))
    settings = load_settings(config, {})
    engine = make_engine(settings.database_url)
    Journal(engine).migrate()
    deposit(Journal(engine), 10 * CR)
    chain_failing_since(engine, datetime.now(timezone.utc) - timedelta(days=2))  # the node went down 2 days ago
    engine.dispose()
    svc = build_service(settings, environ={})
    await svc.cycle_job()  # the daemon's gate: the balance is fine, the chain data is not
    assert svc.state is State.PAUSED and svc.reason.startswith("chain data too stale"), svc.reason

    out = await asyncio.to_thread(cli, config, "cycle")  # as a person runs it, beside the daemon
    assert out.exit_code == 1, out.output
    assert "cycle refused: the loop is paused" in out.output and "chain data too stale" in out.output
    pause = svc.budget.pause_state()
    assert pause.paused and pause.cause == "forced"  # the cycle by hand did not lift the daemon's pause
    assert (await asyncio.to_thread(cli, config, "cycle", "--dry-run")).exit_code == 1
    svc.engine.dispose()


# -- scenario 8: a stale hold and a deposit resume the loop at the next gate -------------------------------


def killed_process_hold(journal: Journal, settings, at: datetime) -> None:  # noqa: ANN001
    """A hold reserved at `at` by a process killed before it sent its request (never committed or released)."""
    Budget(journal, settings.budget, persona=settings.persona, clock=lambda: at).reserve(
        "writer", 5 * CR // 2, model="fake-model", provider="fake", cycle_id="killed")


async def test_scenario_8_gate_a_stale_hold_and_a_deposit_resume_the_daemon_at_the_next_gate(db_url, tmp_path) -> None:
    config = write_config(tmp_path, db_url)
    settings = load_settings(config, {})
    engine = make_engine(settings.database_url)
    journal = Journal(engine)
    journal.migrate()
    daemon_models.migrate(engine)
    clock = [datetime.now(timezone.utc)]
    budget = Budget(journal, settings.budget, persona=settings.persona, clock=lambda: clock[0])
    ran = []
    svc = Service(settings, budget=budget, jobs=Jobs(cycle=lambda ctx: ran.append(ctx.cycle_id)),
                  reader=StatusReader(journal, settings.persona),
                  lock=CycleLock(engine, settings.persona, settings.state_dir), notifier=Notifier({}),
                  policy=error_policy())
    deposit(journal, 3 * CR)
    killed_process_hold(journal, settings, clock[0])  # 2.5 held: available 0.5
    await svc.cycle_job()
    assert svc.state is State.PAUSED and "min_balance" in svc.reason and ran == []
    deposit(journal, CR)  # true balance 4 >= resume_balance 2; with the hold counted, 1.5
    clock[0] += timedelta(seconds=settings.budget.reservation_ttl_seconds + 1)  # the hold is stale now
    await svc.cycle_job()  # the next gate: the stale hold expires, the deposit counts, the cycle runs
    assert svc.state is State.RUNNING and len(ran) == 1
    assert budget.open_reservations() == 0 and budget.available() == 4 * CR
    engine.dispose()


def test_scenario_8_gate_a_stale_hold_and_a_deposit_resume_cycle_by_hand(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    settings = load_settings(config, {})
    engine = make_engine(settings.database_url)
    journal = Journal(engine)
    journal.migrate()
    deposit(journal, 3 * CR)
    then = datetime.now(timezone.utc) - timedelta(seconds=settings.budget.reservation_ttl_seconds + 5)
    killed_process_hold(journal, settings, then)
    # the daemon's gate ran while the hold was fresh: paused at available 0.5
    assert Budget(journal, settings.budget, persona=settings.persona, clock=lambda: then).evaluate().paused
    deposit(journal, CR)
    out = cli(config, "cycle")
    assert out.exit_code == 0, out.output
    assert "RAN" in out.output and "PAUSED" not in out.output
    assert Budget(journal, settings.budget, persona=settings.persona).open_reservations() == 0
    engine.dispose()


def test_the_gate_passes_the_wallets_reason_and_lifts_it_when_it_clears(sqlite_url: str) -> None:
    from agents.cycle import Gate

    journal = Journal(make_engine(sqlite_url))
    journal.migrate()
    deposit(journal, 10 * CR)
    reason = ["chain data too stale: last successful sync 2 days ago"]
    gate = Gate(Budget(journal, load_settings(data={}, environ={}).budget), lambda: reason[0])
    first = gate.check()
    assert first.paused and first.cause == "forced" and first.reason == reason[0]
    reason[0] = None
    assert not gate.check().paused
    journal.engine.dispose()


@pytest.mark.parametrize("outcome", ["paused", "locked"])
def test_a_refused_cycle_by_hand_writes_no_task_and_calls_no_model(tmp_path: Path, outcome: str) -> None:
    from agents.tasks import TaskStore

    config = write_config(tmp_path, extra='[[feeds]]\nurl = "http://127.0.0.1:9/feed.xml"\n')
    settings = load_settings(config, {})
    engine = make_engine(settings.database_url)
    journal = Journal(engine)
    journal.migrate()
    deposit(journal, 10 * CR if outcome == "locked" else CR // 2)
    lock = CycleLock(engine, settings.persona, settings.state_dir)
    if outcome == "locked":
        assert lock.acquire()
    out = cli(config, "cycle")
    lock.release()
    assert out.exit_code == 1 and "cycle refused" in out.output, out.output
    store = TaskStore(engine)
    store.migrate()
    assert store.list() == []
    engine.dispose()
