"""Two processes, one ledger: the earnings job books tips from anvil while `selfpub cycle` spends (SQLite, PostgreSQL).

    process 1   the daemon's earnings job (tests/daemon/earnings_worker.py: real_jobs(...).earnings, the
                wallet's scan then the engagement pull), back to back, two blocks per scan transaction
    process 2   `selfpub cycle` planning three items: the real orchestrator against the usage-reporting
                LLM stand-in, each call held and booked in the same ledger
    the test    sends a tip to the agent on anvil every quarter second while both run, and holds the
                cycle's first model call (its hold open) until the earnings job has booked a tip meanwhile

Both write the ledger's rows at once (tips, compute holds and bookings, the wallet's cursor and sync
clock). Afterwards the ledger must be consistent:
  - each tip booked once: the counted logs are exactly the Transfer logs to the agent on chain, and
    income:tips is their sum;
  - every transaction balanced (Journal.verify), and assets:wallet is funding plus tips (nothing settled);
  - no lost spend: expenses:compute equals what the stand-in billed (>= always; = here, where every
    answer's usage came back), and no hold is left open;
and the two really overlapped: tips were booked inside the time window of a cycle's model calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account

from config.settings import ModelPrice
from kernel.db import make_engine
from ledger.journal import OPENING, TIPS, WALLET, Journal
from tests.agents.feeds_support import FeedServer
from tests.daemon.conftest import REPO
from tests.daemon.cycle_support import CR, PROVIDER, GatedLLM, cli_args, cycle_windows, news_feed, query, write_config
from tests.wallet.conftest import AnvilToken, anvil, anvil_token  # noqa: F401 - the fixtures
from wallet.chain import TRANSFER_TOPIC, address_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ITEMS = 3  # all planned by one cycle
FUNDING = 20 * CR
TIP = 50_000  # ucr
PRICE = ModelPrice(input_per_million=Decimal("2.5"), output_per_million=Decimal("7.3"), provider=PROVIDER)


def wallet_section(tok: AnvilToken, root) -> str:  # noqa: ANN001
    """[wallet] on the anvil token: the agent's key in a keystore, nothing settled during the test."""
    keystore, secret = root / "agent.keystore", root / "keystore-password"
    keystore.write_text(json.dumps(Account.encrypt(tok.agent_key, "earnings-test", kdf="pbkdf2", iterations=1000)))
    secret.write_text("earnings-test")
    for f in (keystore, secret):
        f.chmod(0o600)
    return (f'[wallet]\nmode = "evm"\nrpc_url = "{tok.node.url}"\nchain_id = {tok.node.chain_id}\n'
            f'token_address = "{tok.address}"\naddress = "{tok.agent}"\nkeystore_file = "{keystore}"\n'
            f'keystore_password_file = "{secret}"\nconfirmations = 0\nscan_block_range = 2\n'
            f'settle_threshold = "1000"\nallowlist = ["{tok.payee}"]\n[wallet.providers]\n{PROVIDER} = "{tok.payee}"\n')


def transfers_to(tok: AnvilToken, agent: str) -> dict[tuple[str, int], int]:
    """(tx hash, log index) -> token units of every Transfer log to `agent` on chain."""
    logs = tok.w3.eth.get_logs({"fromBlock": tok.start_block, "toBlock": "latest", "address": tok.address,
                                "topics": [TRANSFER_TOPIC, None, address_topic(agent)]})
    return {("0x" + bytes(lg["transactionHash"]).hex(), int(lg["logIndex"])):
            int.from_bytes(bytes(lg["data"])[-32:], "big") for lg in logs}


def utc(value: datetime | str) -> datetime:
    """A timestamp column as an aware UTC datetime (SQLite gives text back to a raw query)."""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


class Tipper(threading.Thread):
    """Tips the agent every `every` seconds until stopped; the tips it sent."""

    def __init__(self, tok: AnvilToken, every: float) -> None:
        super().__init__(daemon=True)
        self.tok, self.every = tok, every
        self.stop = threading.Event()
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.wait(self.every):
                self.tok.tip(TIP)
                self.sent += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def fund_and_open(config: Path, tok: AnvilToken) -> None:
    """Every room's tables at head (as the daemon's start) and the funding minted and booked by the wallet's scan."""
    from config.loader import load_settings
    from daemon.state import open_state
    from daemon.wiring_wallet import build_wallet

    settings = load_settings(config, {})
    state = open_state(settings)
    try:
        tok.mint(tok.agent, FUNDING)
        assert build_wallet(settings, state.journal).scan().counted == 1
    finally:
        state.engine.dispose()


def tip_booked_after(db_url: str, at: float, timeout: float) -> bool:
    """True once the earnings job has booked a tip after time.time() `at`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(utc(r.counted_at).timestamp() > at
               for r in query(db_url, "SELECT counted_at FROM wallet_counted_log WHERE kind = 'tip'")):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_earnings_and_a_cycle_in_two_processes_keep_the_ledger_consistent(
    db, request, tmp_path, anvil_token,  # noqa: F811 - the fixture imported above
) -> None:
    tok = anvil_token
    db_url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "pg_url")
    started = time.monotonic()
    feeds = FeedServer().start()
    llm = GatedLLM(delay=0.2, hold=90)
    tipper = Tipper(tok, 0.25)
    stop = tmp_path / "stop-earnings"
    try:
        feed_url = news_feed(feeds, ITEMS)
        with llm.running():
            wallet = wallet_section(tok, tmp_path)
            config = write_config(tmp_path, db_url, llm.url, feed_url, wallet=wallet, items=ITEMS)
            fund_and_open(config, tok)
            llm.gate.clear()  # the cycle's first model call waits until the earnings job has booked a tip meanwhile
            tipper.start()
            worker = subprocess.Popen([sys.executable, "-m", "tests.daemon.earnings_worker", str(config), str(stop)],
                                      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            cycle = subprocess.Popen(cli_args(config, "cycle"), cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            assert llm.wait_for_waiting(90), "`selfpub cycle` never called the model"
            in_call = min(llm.arrived.values())
            booked_meanwhile = tip_booked_after(db_url, in_call, 60)
            llm.gate.set()
            out, err = cycle.communicate(timeout=120)
            tipper.stop.set()
            tipper.join(30)
            stop.touch()
            wout, werr = worker.communicate(timeout=120)
    finally:
        llm.gate.set()
        tipper.stop.set()
        feeds.stop()

    assert tipper.error is None, tipper.error
    assert worker.returncode == 0, werr[-3000:]
    runs = json.loads(wout.splitlines()[-1])["runs"]
    assert cycle.returncode == 0 and " RAN: " in out, f"exit {cycle.returncode}\n{out[-2500:]}\n{err[-2500:]}"
    assert booked_meanwhile, "the earnings job booked no tip while the cycle was in a model call"
    print(f"\n{tipper.sent} tips sent, {runs} earnings runs, {len(llm.answered)} model answers; "
          f"{time.monotonic() - started:.1f} s")

    engine = make_engine(db_url)
    journal = Journal(engine)
    try:
        # each tip booked once
        on_chain = transfers_to(tok, tok.agent)
        counted = query(db_url, "SELECT tx_hash, log_index, ucr, kind, status, counted_at FROM wallet_counted_log")
        assert sorted((r.tx_hash, r.log_index) for r in counted) == sorted(on_chain), "booked logs != chain logs"
        assert {r.status for r in counted} == {"counted"}
        tips = [r for r in counted if r.kind == "tip"]
        assert len(tips) == tipper.sent and sum(r.ucr for r in tips) == tipper.sent * TIP
        assert journal.balance(TIPS) == -tipper.sent * TIP and journal.balance(OPENING) == -FUNDING
        # every transaction balanced; the wallet holds the funding and the tips (nothing was settled)
        assert journal.verify() == []
        assert journal.balance(WALLET) == FUNDING + tipper.sent * TIP
        # no lost spend
        spend = query(db_url, "SELECT coalesce(sum(amount), 0) FROM ledger_posting "
                              "WHERE account LIKE 'expenses:compute%'")[0][0]
        billed = llm.billed(PRICE)
        assert spend >= billed > 0 and spend == billed, (spend, billed)
        assert query(db_url, "SELECT count(*) FROM ledger_reservation WHERE status = 'open'")[0][0] == 0
        # the two overlapped: tips were booked inside the window of the cycle's model calls
        [(start, end)] = cycle_windows(db_url, llm).values()
        inside = [r for r in tips if start <= utc(r.counted_at).timestamp() <= end]
        print(f"{len(inside)} of {len(tips)} tips booked while the cycle was calling the model")
        assert inside
    finally:
        engine.dispose()
