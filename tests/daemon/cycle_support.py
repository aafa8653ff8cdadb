"""Peers and helpers for the two-process cycle tests (cycle x `selfpub cycle`, earnings x cycle).

    news_feed(feeds, n)     a feed of n unrelated items on the local FeedServer
    GatedLLM                the usage-reporting LLM stand-in (tests.e2e.standins.UsageLLM) whose answers
                            take `delay` seconds and wait while the test holds the gate; it records when
                            each request arrived and how many wait at the gate now
    fund                    a deposit into the ledger wallet
    write_config            a selfpub.toml for one persona on a database: that LLM, that feed, local outbox
    cycle_windows           [first request, last answer] of each cycle's model calls, from the stand-in's
                            clock, tied to cycles through the call log (every usage pair is unique)
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from kernel.db import make_engine
from tests.agents.feeds_support import FeedServer, rss
from tests.e2e.standins import UsageLLM

MODEL, PROVIDER = "standin-model", "standin"
WORDS = ("sqlite rust python kernel cache queue vector tensor compiler linker debugger network socket thread "
         "async server client browser render shader memory garbage scheduler postgres index planner lexer parser "
         "bytecode runtime container registry firmware driver allocator mutex channel actor stream buffer").split()
REFUSED_BY_LOCK = "another process runs persona"
CR = 1_000_000  # micro-credits


def news_feed(feeds: FeedServer, n: int) -> str:
    """Serve n items about unrelated topics (no two near-duplicates); the feed's URL."""
    items = []
    for i in range(n):
        a, b, c, d = WORDS[4 * i: 4 * i + 4]
        summary = (f"The {a} project ships {b} support for {c} and {d}. Maintainers of {a} say the {b} work "
                   f"took two years. Users of {c} can try it today.")
        items.append((f"{a.title()} {b} {c} release {i}", feeds.url(f"/news/{a}-{b}"), summary))
    return feeds.add("/feed.xml", rss(*items, title="News"))


class GatedLLM(UsageLLM):
    """UsageLLM whose answers take `delay` seconds and wait while the gate is closed (at most `hold` seconds)."""

    def __init__(self, delay: float, hold: float = 45.0) -> None:
        super().__init__()
        self.delay, self.hold = delay, hold
        self.gate = threading.Event()
        self.gate.set()
        self.arrived: dict[int, float] = {}  # request number -> time.time() it arrived
        self.waiting = 0  # requests held at the gate now
        self.revisions_asked = 0  # critic answers below the passing score (a revision follows)
        self._count = threading.Lock()
        self.on_request = self._on_request

    def _on_request(self, n: int) -> bool:
        with self._count:
            self.arrived[n] = time.time()
            self.waiting += 1
        try:
            self.gate.wait(self.hold)
        finally:
            with self._count:
                self.waiting -= 1
        time.sleep(self.delay)
        return False  # answer it

    def _answer(self, n: int, body: dict):  # noqa: ANN202
        status, payload, done = super()._answer(n, body)
        content = json.loads(payload)["choices"][0]["message"]["content"]
        if content.startswith('{"score": ') and json.loads(content)["score"] < 6:  # see standins.answer
            with self._count:
                self.revisions_asked += 1
        return status, payload, done

    def wait_for_waiting(self, timeout: float) -> bool:
        """True once a request waits at the (closed) gate."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.waiting:
                return True
            time.sleep(0.05)
        return False

    def billed(self, price) -> int:  # noqa: ANN001 - a config ModelPrice
        """What the stand-in's answers cost at `price` (what a provider would bill)."""
        from agents.llm.pricing import cost

        return sum(cost(price, a.prompt_tokens, a.completion_tokens) for a in self.answered)


def write_config(root: Path, db_url: str, llm_url: str, feed_url: str, *, wallet: str = "", items: int = 1,
                 persona: str | None = None, name: str = "selfpub.toml") -> Path:
    """root/name: a persona (new unless given) on db_url, agents on the stand-in, local outbox; `wallet` appended."""
    roles = "".join(
        f'[agents.{r}]\nbase_url = "{llm_url}"\nmodel = "{MODEL}"\nmax_retries = 0\ntimeout_seconds = 120\n'
        "max_calls_per_cycle = 40\ntoken_budget_per_cycle = 1000000\n"
        for r in ("orchestrator", "research", "writer", "critic"))
    path = root / name
    path.write_text(
        f'persona = "{persona or "p" + uuid.uuid4().hex[:8]}"\nstate_dir = "{root / "state"}"\n'
        f'[database]\nurl = "{db_url}"\n'
        '[budget]\nmin_balance = "0.1"\nresume_balance = "0.2"\nper_cycle_cap = "5"\ndaily_cap = "50"\n'
        f'[prices."{MODEL}"]\ninput_per_million = "2.5"\noutput_per_million = "7.3"\nprovider = "{PROVIDER}"\n'
        + roles +
        f'[research]\nitems_per_cycle = {items}\n'
        '[review]\nmax_revisions = 1\nmin_words = 10\nmin_sentences = 1\n'
        '[publishers.local]\nenabled = true\n'
        '[http]\nenabled = false\n[logging]\nformat = "json"\n'
        f'[[feeds]]\nurl = "{feed_url}"\n'
        + wallet
    )
    return path


def fund(db_url: str, ucr: int) -> None:
    """Deposit ucr into the ledger wallet of db_url (the ledger migrated first, as `selfpub ledger deposit` does)."""
    from ledger.funding import deposit
    from ledger.journal import Journal

    engine = make_engine(db_url)
    try:
        journal = Journal(engine)
        journal.migrate()
        deposit(journal, ucr)
    finally:
        engine.dispose()


def cli_args(config: Path, *args: str) -> list[str]:
    """argv of `selfpub --config CONFIG ARGS...`."""
    return [sys.executable, "-m", "daemon.cli", "--config", str(config), *args]


def query(db_url: str, sql: str, **params: object) -> list:
    """Rows of one query on db_url (a fresh engine, disposed)."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def cycle_windows(db_url: str, *llms: GatedLLM) -> dict[str, tuple[float, float]]:
    """Each cycle's [first request arrived, last answer written] on the stand-ins' clock (one machine, one clock)."""
    answered = {}
    for llm in llms:
        answered[llm.url] = {(a.prompt_tokens, a.completion_tokens): a for a in llm.answered}
        assert len(answered[llm.url]) == len(llm.answered)  # UsageLLM makes every pair unique
    arrived = {llm.url: llm.arrived for llm in llms}
    windows: dict[str, tuple[float, float]] = {}
    for cycle_id, url, tin, tout in query(db_url, "SELECT cycle_id, endpoint, input_tokens, output_tokens "
                                                  "FROM llm_call WHERE outcome = 'ok'"):
        a, at = answered[url][(tin, tout)], arrived[url]
        start, end = windows.get(cycle_id, (at[a.n], a.at))
        windows[cycle_id] = (min(start, at[a.n]), max(end, a.at))
    return windows


def overlapping(windows: dict[str, tuple[float, float]]) -> list[tuple[str, str]]:
    """Pairs of cycles whose windows overlap."""
    spans = sorted(windows.items(), key=lambda kv: kv[1][0])
    return [(c1, c2) for (c1, (_, end1)), (c2, (start2, _)) in zip(spans, spans[1:]) if start2 < end1]
