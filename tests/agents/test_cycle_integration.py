"""One whole cycle on the real embedded model over a local feed served on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
from functools import partial

import pytest

from agents.llm.calllog import CallLog
from agents.llm.pricing import cost
from agents.orchestrator import Orchestrator
from agents.tasks import TaskStore
from config.settings import AgentSettings, AgentsSettings, FeedSettings, ResearchSettings, ReviewSettings, Settings
from daemon.state import open_state
from daemon.wiring_agents import build_deps
from ledger.funding import deposit
from tests.fakes.scripted_llm import RecordingChannel

pytestmark = [pytest.mark.integration, pytest.mark.real_llm, pytest.mark.timeout(420)]

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Local tech</title><link>http://127.0.0.1/</link>
<item><title>SQLite adds a faster JSON parser</title><link>http://127.0.0.1/sqlite-json</link>
<description>SQLite 3.45 parses JSON twice as fast by storing it as binary JSONB.</description>
<category>databases</category></item>
</channel></rss>"""


@pytest.fixture
def feed_url(tmp_path):
    (tmp_path / "feed.xml").write_text(RSS)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    server.shutdown()
    server.server_close()


async def test_a_whole_cycle_on_the_embedded_model(tmp_path, feed_url):
    small = {"max_calls_per_cycle": 4, "timeout_seconds": 120, "max_retries": 0}
    settings = Settings(
        state_dir=tmp_path,
        agents=AgentsSettings(
            research=AgentSettings(max_tokens=160, **small), writer=AgentSettings(max_tokens=256, **small),
            critic=AgentSettings(max_tokens=96, **small), orchestrator=AgentSettings(max_tokens=32, **small),
        ),
        feeds=(FeedSettings(url=feed_url, name="local"),),
        research=ResearchSettings(items_per_cycle=1),
        review=ReviewSettings(max_revisions=0),
    )
    state = open_state(settings)  # every room's tables, as the daemon opens them
    engine, journal, budget = state.engine, state.journal, state.budget
    deposit(journal, 10_000_000)
    closers: list = []
    channel = RecordingChannel()
    try:
        deps = build_deps(settings, journal, budget, channel=channel, closers=closers)
        deps.max_attempts = 1
        report = await Orchestrator(deps).run_cycle()
    finally:
        for close in reversed(closers):
            result = close()
            if hasattr(result, "__await__"):
                await result
    [task] = TaskStore(engine).list()
    assert report.planned == 1, report
    # a draft exists, or a clear rejection / failure with its reasons
    assert task.messages.drafts or (task.status in ("rejected", "failed") and task.reasons), (task.status, task.reasons)
    calls = CallLog(engine).calls(cycle_id=report.cycle_id)
    assert calls and {c.task_id for c in calls} == {task.id}
    price = settings.prices[settings.agents.research.model]
    reported = sum(cost(price, c.input_tokens, c.output_tokens) for c in calls)
    spent = journal.balance("expenses:compute")
    assert spent == reported == report.cost
    assert budget.open_reservations() == 0
    engine.dispose()
