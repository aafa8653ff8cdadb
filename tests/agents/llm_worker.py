"""A client process for the kill test: one metered call to a (fake) endpoint; the test SIGKILLs it mid-call.

    python -m tests.agents.llm_worker DB_URL BASE_URL TTL_SECONDS

Importable, no pytest: it runs as its own OS process, so its death is a real crash (no finally runs).
"""

from __future__ import annotations

import asyncio
import sys

import openai

from agents.llm.calllog import CallLog
from agents.llm import MeteredLLM
from kernel.db import make_engine
from config.settings import AgentSettings, AgentsSettings, BudgetSettings, ModelPrice
from ledger import Budget, Journal

MODEL = "fake-model"
PRICE = ModelPrice(input_per_million="2", output_per_million="6", provider="fake")
MESSAGES = [{"role": "user", "content": "Write one sentence about otters."}]


def main(db_url: str, base_url: str, ttl: int) -> None:
    """Make one call that the test will not let finish."""
    engine = make_engine(db_url)
    budget = Budget(Journal(engine), BudgetSettings(reservation_ttl_seconds=ttl))
    cfg = AgentSettings(base_url=base_url, model=MODEL, max_retries=0, timeout_seconds=120)
    agents = AgentsSettings(orchestrator=cfg, research=cfg, writer=cfg, critic=cfg)
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-fake", max_retries=0)
    llm = MeteredLLM(agents, {MODEL: PRICE}, budget, {base_url: client}, log_to=CallLog(engine))
    asyncio.run(llm.complete("writer", MESSAGES, cycle_id="killed"))
    print("the call finished: the test should have killed this process first", file=sys.stderr)
    sys.exit(3)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
