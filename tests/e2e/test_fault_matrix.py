"""Fault matrix (issue 7): every peer x every fault, one test per cell, against the real daemon.

Every peer sits behind its own FaultProxy (tests/e2e/faults.py): the LLM stand-in (FakeOpenAI, a
real server), the Dev.to stand-in (spec-validating ForemServer), the real local PDS, real anvil with
the credit token (wallet.mode = "evm"), and a feed host.

One daemon per peer ("world"): `selfpub run` with fast job intervals (tests/daemon/run_daemon.py
--fast-seconds 1) as a subprocess, shared by the six
cells of that peer, which run one after another. A cell gives the feeds two items of its own (one on
the feed behind the proxy, one on a second, healthy feed host), so it asserts only about its own
tasks, posts and log lines; a cell that fails marks its world dirty and the next cell starts a fresh
daemon with a fresh state dir.

Phase A (fault): the daemon meets the faulty peer.
    - the process is alive, /healthz answers, nothing is logged as a crash;
    - the other platforms keep publishing (what the dispatcher's design allows, see PUBLISHED_DURING);
    - retries back off: attempts at the proxy are bounded and spaced, Retry-After is honoured;
    - a JSON log line names the peer (URL/host or platform) and the fault (status or error class).
Phase B (healed, same process): cycles go on until both items are published.
    - every approved draft exists exactly once on Dev.to, Bluesky and in the local outbox, also one
      cycle later.
At the end of a world: SIGTERM ends its daemon with exit code 0 (it never crashed).

The LLM client opens its circuit breaker for 60 s after three failures in a row. The LLM cells
therefore fault exactly two requests (the proxy heals itself after them: FaultProxy.set(times=2)),
except llm-down: a refused connect never reaches the proxy, so that cell lets the breaker open (and
checks it stops the attempts), then restarts the daemon to heal.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.agents.feeds_support import FeedServer, rss
from tests.e2e.faults import FAULTS, RETRY_AFTER, Attempt, FaultProxy
from tests.e2e.support import FAKE_MODEL, ForemServer, cli_env, fooled_model
from tests.fakes.openai import FakeOpenAI
from tests.peers import pds as pds_peer
from tests.peers.anvil import Anvil, start_anvil, stop_anvil

REPO = Path(__file__).resolve().parents[2]
PEERS = ("llm", "devto", "pds", "rpc", "feed")
ITEMS = 2  # per cell: one item on the feed behind the proxy, one on a second, healthy feed host
TIMEOUT = 1  # every client timeout in the config (seconds); the proxy's "slow" holds 2.5 s
LLM_FAULTED = 2  # LLM requests a cell faults: one writer call (1 try + max_retries 1), under the breaker's 3
START_MAX = 60.0
PHASE_A_MAX = 40.0
PHASE_B_MAX = 45.0
POLL = 0.1
DEVTO_KEY = "devto-" + secrets.token_hex(12)

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(not pds_peer.installed(), reason="the PDS peer is not installed (tests/peers/setup.sh)"),
]


# -- shared peers ----------------------------------------------------------------------------------


@dataclass
class Token:
    """The credit token deployed once on the module's anvil."""

    node: Anvil
    address: str


@dataclass
class Peers:
    llm: FakeOpenAI
    llm_url: str  # http://127.0.0.1:port (no /v1)
    forem: ForemServer
    pds: pds_peer.Pds
    token: Token
    feeds: FeedServer


def _deploy_token(node: Anvil) -> Token:
    from web3 import Web3

    from wallet.chain import token_artifact

    w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 10}))
    art = token_artifact()
    tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor("credit", "CR", 18).transact(
        {"from": node.accounts[0]})
    return Token(node, w3.eth.wait_for_transaction_receipt(tx)["contractAddress"])


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    """Every real peer and stand-in, started once for the module and stopped by PID / shutdown."""
    llm = FakeOpenAI(default=fooled_model("", writer_payload=False), usage=(120, 80))
    forem = ForemServer(api_key=DEVTO_KEY)
    feeds = FeedServer().start()
    pds = node = None
    try:
        with llm.serve() as llm_base, forem.running():
            pds = pds_peer.start_pds(tmp_path_factory.mktemp("pds"))
            node = start_anvil(accounts=2)
            yield Peers(llm, llm_base.removesuffix("/v1"), forem, pds, _deploy_token(node), feeds)
    finally:
        feeds.stop()
        if pds is not None:
            pds.stop()
        if node is not None:
            stop_anvil(node)


# -- one peer's world: proxies, account, config, the daemon ---------------------------------------------

# The daemon has no socket guard: anything not on loopback (e.g. the Dev.to stand-in's https://dev.to
# article URLs, fetched for Bluesky link cards) goes to a closed local port instead of the internet.
NO_INTERNET = {k: "http://127.0.0.1:9" for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy",
                                                  "https_proxy", "all_proxy")}
NO_INTERNET.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})


class World:
    """The daemon of one peer's cells, every peer behind a proxy, and its log read incrementally."""

    def __init__(self, peer: str, peers: Peers, root: Path):
        self.peer = peer
        self.peers = peers
        self.root = root
        self.generation = 0
        self.dirty = False
        self.proc: subprocess.Popen | None = None
        self.proxies = {
            "llm": FaultProxy("llm", peers.llm_url),
            "devto": FaultProxy("devto", peers.forem.url),
            "pds": FaultProxy("pds", peers.pds.url, rewrite=(peers.pds.url.replace("localhost", "127.0.0.1"),)),
            "rpc": FaultProxy("rpc", peers.token.node.url),
            "feed": FaultProxy("feed", peers.feeds.base),
        }
        for proxy in self.proxies.values():
            proxy.start()
        self.handle = f"fm{peer}{os.getpid() % 10000}{secrets.token_hex(2)}.test"
        self.password = f"pw-{secrets.token_urlsafe(12)}"
        self.did = peers.pds.create_account(self.handle, self.password).did
        tag = secrets.token_hex(3)
        self.feed_paths = (f"/{peer}{tag}/a.xml", f"/{peer}{tag}/b.xml")  # (behind the proxy, healthy)
        self._lines: list[dict] = []
        self._offset = 0

    # -- files ---------------------------------------------------------------------------------------

    @property
    def state(self) -> Path:
        return self.root / f"state{self.generation}"

    @property
    def db(self) -> Path:
        return self.state / "selfpub.db"

    @property
    def log_path(self) -> Path:
        return self.root / f"daemon{self.generation}.log"

    def lines(self) -> list[dict]:
        """Every JSON log line of the current daemon (parsed once, read on from the last offset)."""
        if not self.log_path.exists():
            return self._lines
        with self.log_path.open("rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        for raw in chunk[:end].decode(errors="replace").splitlines():
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if isinstance(rec, dict):
                self._lines.append(rec)
        return self._lines

    def tail(self, n: int = 40) -> str:
        return "\n".join(json.dumps(r)[:600] for r in self.lines()[-n:])

    def query(self, sql: str, *args: object) -> list[tuple]:
        """Read the daemon's SQLite database (read-only, while it runs)."""
        if not self.db.exists():
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []  # not migrated yet
        finally:
            conn.close()

    def task_status(self) -> dict[str, str]:
        return dict(self.query("SELECT id, status FROM task"))

    def outbox_done(self, keys: set[str]) -> dict[str, set[str]]:
        """platform -> keys the outbox records as done."""
        out: dict[str, set[str]] = {"devto": set(), "bluesky": set(), "local": set()}
        for key, platform, status in self.query("SELECT key, platform, status FROM publishers_outbox"):
            if status == "done" and key in keys:
                out[platform].add(key)
        return out

    def local_keys(self) -> list[str]:
        folder = self.state / "outbox"
        keys = []
        for path in sorted(folder.glob("*.md")) if folder.exists() else []:
            m = re.search(r"^key: (\S+)$", path.read_text(), re.MULTILINE)
            if m:
                keys.append(m.group(1).strip("'\""))
        return keys

    # -- life cycle ----------------------------------------------------------------------------------

    def fresh(self) -> None:
        """A new state dir, funded, and a daemon started on it (the old one killed by PID)."""
        self.kill()
        for proxy in self.proxies.values():
            proxy.heal()
        self.generation += 1
        self._lines, self._offset = [], 0
        for path in self.feed_paths:  # the new daemon must not plan the items of the cell before
            self.peers.feeds.add(path, rss())
        self.write_config()
        fund(self.db, f"fault-matrix-{self.peer}-{self.generation}")
        self.start()
        self.dirty = False

    def start(self) -> None:
        """Start the daemon on the current state; returns once its status server listens."""
        fh = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.daemon.run_daemon", "--config", str(self.root / "selfpub.toml"),
                 "--fast-seconds", "1", "--stop-grace", "10"],
                cwd=REPO, env=cli_env(NO_INTERNET), stdout=fh, stderr=subprocess.STDOUT,
            )
        finally:
            fh.close()
        mark = len(self.lines())
        self.wait(lambda: any(r.get("msg") == "service started" for r in self.lines()[mark:]), START_MAX,
                  "the daemon to start")

    def stop(self) -> int:
        """SIGTERM; the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()

    def wait(self, done: Callable[[], bool], limit: float, what: str) -> None:
        """Poll `done` until true; fail early when the daemon exits."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited with {self.proc.returncode} while waiting for {what}:\n"
                                     + self.tail())
            if done():
                return
            time.sleep(POLL)
        raise AssertionError(f"timed out after {limit}s waiting for {what}:\n" + self.tail())

    def status_port(self) -> int:
        """The status server's port (of the last start: a restart logs to the same file)."""
        for rec in reversed(self.lines()):
            if rec.get("msg") == "status server listening":
                return int(rec["port"])
        raise AssertionError("no 'status server listening' log line")

    # -- config --------------------------------------------------------------------------------------

    def write_config(self) -> None:
        """selfpub.toml: every peer through its proxy, short timeouts, one item per cycle."""
        p = self.proxies
        secret_dir = self.root / "secrets"
        secret_dir.mkdir(parents=True, exist_ok=True)
        files = {}
        keystore_password = secrets.token_urlsafe(16)
        wallet_address = write_keystore(secret_dir / "keystore.json", keystore_password)
        for name, value in {"llm": "sk-" + secrets.token_urlsafe(24), "devto": DEVTO_KEY, "bluesky": self.password,
                            "keystore_password": keystore_password}.items():
            path = secret_dir / name
            path.write_text(value + "\n")
            path.chmod(0o600)
            files[name] = path
        roles = "".join(
            f'[agents.{role}]\nbase_url = "{p["llm"].url}/v1"\nmodel = "{FAKE_MODEL}"\n'
            f'api_key_file = "{files["llm"]}"\nmax_retries = 1\ntimeout_seconds = {TIMEOUT}\n'
            f"max_calls_per_cycle = 40\ntoken_budget_per_cycle = 1000000\n"
            for role in ("orchestrator", "research", "writer", "critic")
        )
        token = self.peers.token
        faulty_feed, healthy_feed = self.feed_paths
        text = f"""state_dir = "{self.state}"

[budget]
min_balance = "0.1"
resume_balance = "0.2"
per_cycle_cap = "5"
daily_cap = "50"

[prices."{FAKE_MODEL}"]
input_per_million = "2"
output_per_million = "6"
provider = "fake"

{roles}
[research]
items_per_cycle = 1
fetch_timeout_seconds = {TIMEOUT}

[review]
max_revisions = 0

[publishers.devto]
enabled = true
base_url = "{p['devto'].url}"
api_key_file = "{files['devto']}"
publish = true
timeout_seconds = {TIMEOUT}

[publishers.bluesky]
enabled = true
base_url = "{p['pds'].url}"
handle = "{self.handle}"
app_password_file = "{files['bluesky']}"
timeout_seconds = {TIMEOUT}

[publishers.local]
enabled = true

[wallet]
mode = "evm"
rpc_url = "{p['rpc'].url}"
chain_id = {token.node.chain_id}
token_address = "{token.address}"
address = "{wallet_address}"
keystore_file = "{secret_dir / 'keystore.json'}"
keystore_password_file = "{files['keystore_password']}"
confirmations = 0
rpc_timeout_seconds = {TIMEOUT}
settle_threshold = "1000"

[http]
port = 0

[logging]
format = "json"
level = "INFO"

[[feeds]]
url = "{p['feed'].url}{faulty_feed}"

[[feeds]]
url = "{self.peers.feeds.base}{healthy_feed}"
"""
        (self.root / "selfpub.toml").write_text(text)

    def serve_items(self, cell_id: str) -> None:
        """Replace both feeds' items with two of this cell's (unique words: no near-duplicate of another cell)."""
        rng = random.Random(f"fault-matrix:{cell_id}")
        base = self.peers.feeds.base

        def words(n: int) -> str:
            return " ".join("".join(rng.choice("bcdfghjklmnprstvz") + rng.choice("aeiou") for _ in range(3))
                            for _ in range(n))

        for path in self.feed_paths:
            slug = f"{cell_id}-{path.rsplit('/', 1)[-1].removesuffix('.xml')}"
            title, summary = words(4).capitalize(), words(10).capitalize() + "."
            self.peers.feeds.add(path, rss((title, f"{base}/items/{slug}", summary)))


def write_keystore(path: Path, password: str) -> str:
    """A fresh wallet key in a keystore (cheap PBKDF2 instead of scrypt: it is decrypted at every start)."""
    from eth_account import Account

    account = Account.create()
    path.write_text(json.dumps(Account.encrypt(account.key, password, kdf="pbkdf2", iterations=1000)))
    path.chmod(0o600)
    return account.address


def fund(db: Path, key: str) -> None:
    """10 credits in the ledger before the daemon starts (the chain may be the faulty peer)."""
    from kernel.db import make_engine
    from ledger.funding import deposit
    from ledger.journal import Journal

    db.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(f"sqlite:///{db}")
    try:
        journal = Journal(engine)
        journal.migrate()
        deposit(journal, 10_000_000, idempotency_key=key)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, peers: Peers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One peer's daemon for its cells; at the end SIGTERM must stop it with exit code 0."""
    w = World(request.param, peers, tmp_path_factory.mktemp(f"world-{request.param}"))
    try:
        w.fresh()
        yield w
        if w.proc is not None:
            code = w.stop()
            crashes = [r for r in w.lines() if r.get("level") == "critical"]
            assert code == 0 and not crashes, f"the {w.peer} daemon ended with {code}:\n{w.tail()}"
    finally:
        w.kill()
        w.close()


# -- what the platforms hold ----------------------------------------------------------------------------


def devto_keys(peers: Peers, keys: set[str]) -> list[str]:
    """The idempotency key of every Dev.to article made for one of `keys` (one entry per article)."""
    found = []
    for art in peers.forem.articles:
        m = re.search(r"<!-- selfpub:(\S+) -->", art.get("body_markdown") or "")
        if m and m.group(1) in keys:
            found.append(m.group(1))
    return found


def bluesky_rkeys(peers: Peers, did: str) -> list[str]:
    """The record keys of every post in the world's repo, read from the PDS directly."""
    resp = httpx.get(f"{peers.pds.url}/xrpc/com.atproto.repo.listRecords",
                     params={"repo": did, "collection": "app.bsky.feed.post", "limit": 100}, timeout=10)
    resp.raise_for_status()
    return [r["uri"].rsplit("/", 1)[-1] for r in resp.json()["records"]]


# -- what the log must say -----------------------------------------------------------------------------

FAULT_WORDS = {
    "down": r"ConnectError|ConnectionError|ConnectionRefused|refused|APIConnectionError|NetworkError",
    "slow": r"[Tt]imeout|TimedOut|ReadTimeout|timed out",
    "429": r"\b429\b|RateLimit|Too Many Requests",
    "500": r"\b500\b|InternalServerError|Internal Server Error",
    "malformed": r"JSONDecodeError|Decode|malformed|[Uu]nreadable|parse|bozo|ValidationError|not JSON|Expecting",
    "reset": r"RemoteProtocolError|ConnectionReset|reset|RemoteDisconnected|Disconnected|APIConnectionError|"
             r"ConnectionError|ReadError|NetworkError",
}


def peer_words(world: World) -> str:
    """How a log line may name the faulty peer: its proxy's host:port, or its platform name."""
    port = re.escape(f"127.0.0.1:{world.proxies[world.peer].port}")
    return {"devto": rf"{port}|\"platform\": \"devto\"", "pds": rf"{port}|\"platform\": \"bluesky\""}.get(world.peer, port)


def naming_lines(world: World, fault: str, lines: list[dict]) -> list[dict]:
    """Log lines naming both the peer and the fault."""
    who, what = re.compile(peer_words(world)), re.compile(FAULT_WORDS[fault])
    return [r for r in lines if who.search(text := json.dumps(r)) and what.search(text)]


def cycles_in(lines: list[dict]) -> int:
    return sum(1 for r in lines if r.get("msg") == "cycle finished")


# -- the matrix -----------------------------------------------------------------------------------------

# Platforms that must receive posts while the peer is faulty (the healthy second feed always has an item).
PUBLISHED_DURING = {
    "llm": set(),  # no model, no drafts: nothing new can be written (items wait, nothing fails)
    "devto": {"local"},  # Bluesky waits for the Dev.to link by design (publishers/dispatch.py)
    "pds": {"devto", "local"},
    "rpc": {"devto", "bluesky", "local"},
    "feed": {"devto", "bluesky", "local"},
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("world", PEERS, indirect=True, scope="module")
def test_fault_cell(world: World, fault: str, peers: Peers) -> None:
    if world.dirty or world.proc is None:
        world.fresh()  # an earlier cell of this peer failed: start from a clean daemon and state
    world.dirty = True  # until this cell has passed
    run_cell(world, fault, peers)
    world.dirty = False


def run_cell(world: World, fault: str, peers: Peers) -> None:
    peer = world.peer
    proxy = world.proxies[peer]
    restart = peer == "llm" and fault == "down"
    cell_id = f"{peer}-{fault}-{secrets.token_hex(2)}"
    before = set(world.task_status())
    rkeys_before = set(bluesky_rkeys(peers, world.did))
    mark = len(world.lines())
    seen = len(proxy.attempts)
    must = PUBLISHED_DURING[peer]

    def mine() -> dict[str, str]:
        return {t: s for t, s in world.task_status().items() if t not in before}

    def keys() -> set[str]:
        return {f"selfpub-{t}" for t in mine()}

    proxy.set(fault, times=LLM_FAULTED if peer == "llm" and not restart else None)
    world.serve_items(cell_id)

    # -- phase A: the fault ---------------------------------------------------------------------------
    def phase_a_done() -> bool:
        lines = world.lines()[mark:]
        named = [i for i, r in enumerate(lines) if naming_lines(world, fault, [r])]
        if not named:
            return False
        cycles = cycles_in(lines[named[0]:])  # cycles that ended after the fault was met
        if peer == "llm":
            # the proxy healed itself after LLM_FAULTED requests; llm-down: 2 cycles open the breaker
            return cycles >= 2 if restart else proxy.mode == "pass" and cycles >= 1
        if fault == "429" and peer in ("rpc", "feed"):
            # long enough to see the second try, which must wait for Retry-After
            if len(bursts([a.t for a in proxy.attempts[seen:] if a.mode != "pass"])) < 2:
                return False
        ks = keys()
        return bool(ks) and cycles >= 1 and all(world.outbox_done(ks)[p] for p in must)

    world.wait(phase_a_done, PHASE_A_MAX, f"the {peer} {fault} fault to be met, logged and worked around")
    t_heal = time.monotonic()
    assert world.proc is not None and world.proc.poll() is None, "the daemon died under the fault"
    health = httpx.get(f"http://127.0.0.1:{world.status_port()}/healthz", timeout=5)
    assert health.status_code in (200, 503), health.text
    phase_a = world.lines()[mark:]
    during = world.outbox_done(keys())
    faulted = [a for a in proxy.attempts[seen:] if a.mode != "pass"]

    if restart:
        # The client's circuit breaker is open for 60 s: a restart (clean, exit 0) starts it closed.
        assert world.stop() == 0, world.tail()
    proxy.heal()
    mark_b = len(world.lines())
    if restart:
        world.start()

    # -- phase B: healed ------------------------------------------------------------------------------
    def all_published() -> bool:
        status = mine()
        ks = {f"selfpub-{t}" for t in status}
        done = world.outbox_done(ks)
        return (len(status) == ITEMS and all(s == "published" for s in status.values())
                and all(done[p] == ks for p in done))

    world.wait(all_published, PHASE_B_MAX, f"both items of {cell_id} published after healing")
    mark_c = len(world.lines())
    world.wait(lambda: cycles_in(world.lines()[mark_c:]) >= 1, 15, "one more cycle after everything was published")
    lines = world.lines()[mark_b:] if restart else world.lines()[mark:]
    assert world.proc.poll() is None

    # -- the daemon kept running: no crash logged -----------------------------------------------------
    crashes = [r for r in phase_a + lines if r.get("level") == "critical" or "bug in job" in str(r.get("msg"))]
    assert not crashes, crashes
    # jobs write the database side by side; a read-then-write transaction must take the lock up front
    locked = [r for r in phase_a + lines if "database is locked" in json.dumps(r)]
    assert not locked, locked[:2]

    # -- other platforms kept publishing ------------------------------------------------------------
    for platform in must:
        assert during[platform], f"{platform} got nothing while {peer} was {fault}: {during}"

    # -- nothing duplicates: each approved draft exactly once per platform ----------------------------
    ks = keys()
    assert len(ks) == ITEMS, mine()
    assert sorted(devto_keys(peers, ks)) == sorted(ks), f"Dev.to articles per key: {devto_keys(peers, ks)}"
    from publishers.bluesky import part_key

    rkeys = bluesky_rkeys(peers, world.did)
    new = [r for r in rkeys if r not in rkeys_before]
    assert sorted(new) == sorted(part_key(k, 0) for k in ks), (new, ks)  # one post each, nothing else
    assert sorted(k for k in world.local_keys() if k in ks) == sorted(ks)
    assert not peers.forem.errors, peers.forem.errors[-3:]

    # -- retries back off -------------------------------------------------------------------------
    check_backoff(world, fault, faulted, phase_a, proxy.attempts[seen:])

    # -- the log names the peer and the fault ---------------------------------------------------------
    assert naming_lines(world, fault, phase_a), (
        f"no log line names {peer} ({peer_words(world)}) and {fault} ({FAULT_WORDS[fault]}):\n"
        + "\n".join(json.dumps(r) for r in phase_a if r.get("level") in ("warning", "error"))[-4000:])


# -- backoff, per peer --------------------------------------------------------------------------------


def gaps(ts: list[float]) -> list[float]:
    return [b - a for a, b in zip(ts, ts[1:])]


def bursts(ts: list[float], within: float = 0.5) -> list[float]:
    """The first time of each group of attempts closer than `within` (concurrent jobs hit together)."""
    out: list[float] = []
    for t in sorted(ts):
        if not out or t - last > within:
            out.append(t)
        last = t
    return out


def log_times(lines: list[dict], pred: Callable[[dict], bool]) -> list[float]:
    return sorted(datetime.fromisoformat(r["ts"]).timestamp() for r in lines if pred(r))


def check_backoff(world: World, fault: str, faulted: list[Attempt], lines: list[dict], everything: list[Attempt]) -> None:
    """Attempts that met the fault are bounded and spaced; after a 429 nothing is sent before Retry-After.

    Refused connections never reach the proxy: for `down` the daemon's own failure lines are the attempts.
    """
    peer = world.peer
    down = fault == "down"
    assert down or faulted, f"the {peer} proxy saw no request under the {fault} fault"
    floor_429 = RETRY_AFTER * 0.95
    if peer == "llm":
        if down:
            ts = log_times(lines, lambda r: r.get("msg") == "llm call" and r.get("outcome") == "error")
            # 2 cycles x (1 try + max_retries 1), but the circuit breaker opens at the 3rd failure
            assert len(ts) == 3, f"{len(ts)} LLM attempts: the breaker should stop them at 3"
            assert gaps(ts)[0] >= 0.2, gaps(ts)  # the in-call retry waits (backoff >= 0.25 s)
            return
        ts = [a.t for a in faulted]
        assert len(ts) == LLM_FAULTED, ts
        assert gaps(ts)[0] >= (floor_429 if fault == "429" else 0.2), gaps(ts)
        if fault == "429":
            # the Retry-After of the last 429 holds the endpoint off for the next call too
            after = [a.t for a in everything if a.mode == "pass" and a.t > ts[-1]]
            assert after and after[0] - ts[-1] >= floor_429, (ts, after[:1])
    elif peer in ("devto", "pds"):
        platform = {"devto": "devto", "pds": "bluesky"}[peer]
        retries = [r for r in lines if r.get("msg") == "publish retry" and r.get("platform") == platform]
        assert retries, f"no publish retry logged for {platform}"
        # the outbox backs off 1 s, 2 s between tries of one cycle; a 429 waits its Retry-After
        for r in retries:
            assert r["wait"] >= 1.0 and (fault != "429" or r["wait"] >= RETRY_AFTER), r
        per_key: dict[str, int] = {}
        for r in retries:
            per_key[r["key"]] = max(per_key.get(r["key"], 0), r["attempt"])
        assert all(n <= 2 for n in per_key.values()), per_key  # 3 tries a cycle at most
        if peer == "devto" and not down:
            posts = [a.t for a in faulted if a.method == "POST"]
            floor = floor_429 if fault == "429" else 0.9  # write limit 1/s; a 429 blocks writes
            assert all(g >= floor for g in gaps(posts)), gaps(posts)
    elif peer == "rpc":
        named = naming_lines(world, fault, lines)
        ts = log_times(named, lambda r: True) if down else [a.t for a in faulted]
        assert ts, "no RPC attempt"
        span = max(1.0, max(ts) - min(ts))
        # three wallet jobs a second (fast mode), each call tried at most 3 times: no storm
        assert len(ts) / span <= 20, f"{len(ts)} RPC attempts in {span:.1f} s"
        if fault == "429":
            # after a 429 the node is held off for its Retry-After (jobs running together may hit it at once)
            assert all(g >= floor_429 for g in gaps(bursts(ts))), gaps(bursts(ts))
    elif peer == "feed":
        ts = (log_times(lines, lambda r: r.get("msg") == "feed fetched" and "/a.xml" in str(r.get("feed_url"))
                        and r.get("status") not in ("ok", "deferred")) if down else [a.t for a in faulted])
        assert ts, "the faulty feed was never fetched"
        # once a cycle at most; after a 429 not again before Retry-After
        floor = floor_429 if fault == "429" else 0.5
        assert all(g >= floor for g in gaps(ts)), gaps(ts)
