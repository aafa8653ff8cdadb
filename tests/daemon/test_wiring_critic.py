"""The daemon wires the critic's link policy from settings: the configured Forem host and bsky.app (issue 11,
scenario 13: a draft may link to the platform it is published on, and to nothing else off-source)."""

from __future__ import annotations

from pathlib import Path

import httpx

from agents.critic import link_policy
from agents.messages import Brief
from config.settings import Settings
from daemon.state import open_state
from daemon.wiring_agents import build_deps
from publishers import BLUESKY_APP_URL


async def test_the_critic_allows_the_configured_forem_host_and_bluesky_only(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, publishers={"devto": {"base_url": "https://forem.example"}})
    state = open_state(settings)
    async with httpx.AsyncClient() as client:
        deps = build_deps(settings, state.journal, state.budget, llm=object(), channel=None, closers=[],
                          http_client=client)
    assert deps.critic.platforms == ("https://forem.example", BLUESKY_APP_URL)
    brief = Brief(topic="t", angle="a", sources=("https://source.example/a",))
    policy = link_policy(brief, platforms=deps.critic.platforms)
    assert policy.allows("https://forem.example/someone/post") and policy.allows(f"{BLUESKY_APP_URL}/profile/x")
    assert not policy.allows("https://dev.to/someone/post")  # not the Forem this daemon publishes to
    state.engine.dispose()


async def test_the_critic_reviews_by_rubric_only_where_the_endpoint_enforces_a_grammar(tmp_path: Path) -> None:
    """The embedded llama.cpp server turns the rubric's schema into a grammar (agents/rubric.py); a hosted model
    keeps scoring the draft itself."""
    critics = {}
    for base_url in ("embedded", "https://llm.example/v1"):
        settings = Settings(state_dir=tmp_path / base_url.split(":")[0],
                            agents={"critic": {"base_url": base_url, "model": "smollm2-135m-instruct"}})
        state = open_state(settings)
        async with httpx.AsyncClient() as client:
            deps = build_deps(settings, state.journal, state.budget, llm=object(), channel=None, closers=[],
                              http_client=client)
        critics[base_url] = deps.critic
        state.engine.dispose()
    assert critics["embedded"].structured and critics["embedded"].prompt.name == "critic_rubric"
    assert not critics["https://llm.example/v1"].structured and critics["https://llm.example/v1"].prompt.name == "critic"
