"""Tracing across real jobs: one trace per cycle with a span per agent step, LLM call, publish;
chain calls in the traces of the earnings and settlement jobs.

The real wiring (build_service) with the SDK's in-memory exporter: FakeOpenAI on a socket, the local
publisher and the spec-checking fake Dev.to, the bundled sample feed, the embedded chain wallet.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from config import load_settings
from config.settings import Settings
from daemon.demo.loop import sample_site
from daemon.tracing import setup_tracing
from daemon.wiring import build_service
from tests.e2e.support import FAKE_MODEL, ForemServer, Secrets, cli_env, cycle_config, fooled_model
from tests.fakes.openai import FakeOpenAI
from wallet.embedded import EmbeddedChain

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
CR = 1_000_000
USAGE = (400, 200)
AGENT_STEPS = {"agent.plan", "agent.research", "agent.write", "agent.critique"}


def _wallet_table(payee: str) -> str:
    """The [wallet] lines of an embedded chain that pays the fake provider `payee`."""
    return (f'[wallet]\nmode = "embedded"\nconfirmations = 0\nsettle_threshold = "0.001"\n'
            f'allowlist = ["{payee}"]\nproviders = {{ fake = "{payee}" }}\n')


def _trees(spans: list[ReadableSpan]) -> dict[str, list[list[ReadableSpan]]]:
    """Root span name -> the spans of each trace it starts (root first)."""
    out: dict[str, list[list[ReadableSpan]]] = {}
    for root in (s for s in spans if s.parent is None):
        members = [s for s in spans if s.context.trace_id == root.context.trace_id]
        out.setdefault(root.name, []).append([root, *(s for s in members if s is not root)])
    return out


def _descends(span: ReadableSpan, root: ReadableSpan, by_id: dict[int, ReadableSpan]) -> bool:
    while span.parent is not None:
        if span.parent.span_id == root.context.span_id:
            return True
        span = by_id[span.parent.span_id]
    return False


async def test_a_wired_cycle_is_one_trace_with_agent_llm_publish_and_chain_spans(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    tracer = setup_tracing(Settings(), exporter=exporter)
    payee = EmbeddedChain.start().others[0]  # the embedded chain's accounts are deterministic
    secrets = Secrets.random()
    files = secrets.write(tmp_path / "secrets")
    llm = FakeOpenAI(default=fooled_model("", writer_payload=False), usage=USAGE)
    forem = ForemServer(secrets.devto_api_key)
    with llm.serve() as llm_url, forem.running(), sample_site() as feed_url:
        path = cycle_config(tmp_path, feeds=[feed_url], llm_url=llm_url, forem_url=forem.url, secret_files=files,
                            items_per_cycle=1, max_revisions=0)
        path.write_text(path.read_text().replace("[wallet]\n", _wallet_table(payee)))
        env = cli_env()
        settings = load_settings(path, env)
        assert settings.wallet.mode == "embedded"
        svc = build_service(settings, config_path=path, environ=env, tracer=tracer)
        wallet = svc.jobs.settle.__self__
        wallet.embedded.fund_agent(2 * CR)
        exporter.clear()

        await svc.earnings_job()  # books the funding from the chain
        assert svc.budget.available() == 2 * CR
        await svc.cycle_job()
        await svc.cycle_job()
        await svc.settle_job()  # pays the fake provider's liability on chain
        await svc.jobs.cycle.__self__.current.aclose()
        svc.engine.dispose()

    assert len(forem.articles) == 2 and forem.errors == []
    spans = list(exporter.get_finished_spans())
    trees = _trees(spans)
    by_id = {s.context.span_id: s for s in spans}
    names = {name: [len(t) for t in ts] for name, ts in trees.items()}

    # one trace per cycle, every span of it under the root
    cycles = trees.get("cycle", [])
    assert len(cycles) == 2, names
    assert cycles[0][0].context.trace_id != cycles[1][0].context.trace_id
    for root, *members in cycles:
        assert all(_descends(s, root, by_id) for s in members)
        got = [s.name for s in members]
        assert AGENT_STEPS <= set(got), got
        chats = [s for s in members if s.name == f"chat {FAKE_MODEL}"]
        assert len(chats) == 3, got  # research, write, critique
        for chat in chats:
            assert chat.attributes["gen_ai.request.model"] == FAKE_MODEL
            assert chat.attributes["gen_ai.operation.name"] == "chat"
            assert (chat.attributes["gen_ai.usage.input_tokens"], chat.attributes["gen_ai.usage.output_tokens"]) == USAGE
            assert chat.attributes["selfpub.cost_ucr"] > 0
        steps = {by_id[c.parent.span_id].name for c in chats}
        assert steps <= AGENT_STEPS | {"research.brief"}, steps
        publishes = [s for s in members if s.name == "outbox.publish"]
        assert sorted(s.attributes["platform"] for s in publishes) == ["devto", "local"], got
        assert all(by_id[s.parent.span_id].name == "publish" for s in publishes)
        (devto,) = [s for s in publishes if s.attributes["platform"] == "devto"]
        posts = [s for s in members if s.name == "devto POST /api/articles"]
        assert len(posts) == 1 and _descends(posts[0], devto, by_id), got
        assert not [s for s in members if s.name.startswith("wallet.")]  # no chain call inside a cycle

    # no LLM call or publish outside a cycle's trace
    in_cycles = {s.context.span_id for _, *m in cycles for s in m}
    stray = [s.name for s in spans if (s.name.startswith("chat ") or s.name.startswith("outbox."))
             and s.context.span_id not in in_cycles]
    assert stray == []

    # chain calls: the earnings and settlement jobs are each one trace, scan / settle spans with their RPCs
    (earnings,) = trees.get("earnings", [[]])
    (settle,) = trees.get("settle", [[]])
    root, *members = earnings
    scan = [s for s in members if s.name == "wallet.scan"]
    assert len(scan) == 1 and scan[0].attributes["wallet.tips_booked"] == 1
    assert {"wallet.get_logs", "wallet.block_number"} <= {s.name for s in members if _descends(s, scan[0], by_id)}
    root, *members = settle
    (pay,) = [s for s in members if s.name == "wallet.settle"]
    assert pay.attributes["wallet.payments"] == 1
    assert "wallet.send_raw_transaction" in {s.name for s in members if _descends(s, pay, by_id)}
    # every chain call belongs to a job's trace (none is a trace of its own)
    assert not [s.name for s in spans if s.parent is None and s.name.startswith("wallet.")]
