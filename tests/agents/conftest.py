"""Agents fixtures: the fake OpenAI server, a funded ledger, the metered client, the embedded model.

The switch that forbids real LLM endpoints in unit tests covers the whole suite:
it is in tests/conftest.py (opt in with `@pytest.mark.real_llm`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agents.llm.calllog import CallLog
from agents.llm.embedded import EmbeddedError, EmbeddedServer
from agents.llm import MeteredLLM
from kernel.db import make_engine
from config.settings import AgentSettings, AgentsSettings, BudgetSettings, ModelPrice
from ledger import Budget, Journal
from ledger.funding import deposit
from tests.fakes.openai import FakeOpenAI

FAKE_URL = "http://fake-llm.test/v1"
FAKE_MODEL = "fake-model"
# 2 and 6 credits per 1M tokens: 10 prompt + 5 completion tokens cost 20 + 30 = 50 ucr.
FAKE_PRICE = ModelPrice(input_per_million="2", output_per_million="6", provider="fake")


# -- the ledger and the call log ------------------------------------------------------


@pytest.fixture
def llm_engine(sqlite_url: str) -> Iterator[Any]:
    """A SQLite engine with the ledger and the call-log tables."""
    eng = make_engine(sqlite_url)
    Journal(eng).migrate()
    CallLog(eng).migrate()
    yield eng
    eng.dispose()


@pytest.fixture
def journal(llm_engine: Any) -> Journal:
    """The journal, funded with 10 credits."""
    j = Journal(llm_engine)
    deposit(j, 10_000_000, idempotency_key="test-funding")
    return j


@pytest.fixture
def budget(journal: Journal) -> Budget:
    """A budget over the funded journal (caps: 5 credits a day, 1 a cycle)."""
    return Budget(journal, BudgetSettings())


@pytest.fixture
def call_log(llm_engine: Any) -> CallLog:
    """The llm_call log on the same database."""
    return CallLog(llm_engine)


# -- the fake server and the metered client ------------------------------------------


@pytest.fixture
def fake_openai() -> FakeOpenAI:
    """A fake OpenAI-compatible server answering "ok" with usage (10, 5) by default."""
    return FakeOpenAI(models=(FAKE_MODEL,))


@pytest.fixture
def sleeps() -> list[float]:
    """The delays the client asked to sleep (recorded, not slept)."""
    return []


def agents_on(base_url: str = FAKE_URL, model: str = FAKE_MODEL, **role: Any) -> AgentsSettings:
    """Agents settings with every role on one endpoint and model."""
    cfg = AgentSettings(base_url=base_url, model=model, **role)
    return AgentsSettings(orchestrator=cfg, research=cfg, writer=cfg, critic=cfg)


@pytest.fixture
def make_llm(fake_openai: FakeOpenAI, budget: Budget, call_log: CallLog, sleeps: list[float]) -> Callable[..., MeteredLLM]:
    """Build a MeteredLLM over the fake (MockTransport) with the test ledger and call log."""

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def build(agents: AgentsSettings | None = None, prices: dict[str, ModelPrice] | None = None, **kw: Any) -> MeteredLLM:
        clients = kw.pop("clients", None) or {FAKE_URL: fake_openai.client(FAKE_URL)}
        kw.setdefault("sleep", record_sleep)
        kw.setdefault("log_to", call_log)
        return MeteredLLM(
            agents or agents_on(), {FAKE_MODEL: FAKE_PRICE} if prices is None else prices, budget, clients, **kw
        )

    return build


# -- the real embedded model ------------------------------------------------------------


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[EmbeddedServer]:
    """SmolLM2 served by llama-cpp-python on 127.0.0.1 for the whole session (real_llm tests only)."""
    try:
        server = EmbeddedServer(n_threads=2, seed=0).start()
    except EmbeddedError as exc:
        pytest.skip(f"embedded model unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()
