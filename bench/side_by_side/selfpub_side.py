"""The selfpub side: the daemon's own wiring (daemon.wiring_agents.build_deps) over local peers.

`selfpub_settings(...)` is the configuration a user would write for an
OpenAI-compatible endpoint; `SelfpubRun` builds the journal, budget and the
orchestrator from it exactly as the daemon does, and runs cycles. Feeds come
from a FeedServer, the model from the CountingServer; publishing goes to the
local outbox (or the channel given, e.g. Dev.to for the overhead bench).
With `fetch_articles=True` selfpub fetches each item's article page from the
bench's local site (peers.FeedServer) and its research call reads it.

`critic_reads_whole_draft()`: for the side-by-side, selfpub's critic is shown
the whole draft (title, description, every sentence of the body with links as
their labels, the Bluesky text) instead of its excerpt, as the crew's critic is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.orchestrator import CycleReport, Orchestrator
from config.settings import AgentSettings, AgentsSettings, FeedSettings, ModelPrice, ResearchSettings, Settings
from daemon.state import open_state
from daemon.wiring_agents import build_deps
from ledger.funding import deposit

MODEL = "bench-model"
# A small hosted model's list price, in credits per 1M tokens (as a user would configure it).
PRICE = ModelPrice(input_per_million="0.15", output_per_million="0.6", provider="bench")
ITEMS_FILE = Path(__file__).with_name("items.json")  # short items (the overhead and accuracy benches)
LONG_ITEMS_FILE = Path(__file__).with_name("items_long.json")  # with their articles' text (the side-by-side)
FUNDS = 1_000 * 1_000_000  # ucr deposited before the run: far more than any run spends


def load_items(path: Path = ITEMS_FILE, limit: int | None = None) -> list[dict]:
    """The benchmark's feed items."""
    items = json.loads(path.read_text(encoding="utf-8"))
    return items[:limit] if limit else items


def selfpub_settings(state_dir: Path, llm_url: str, feed_url: str, *, items_per_cycle: int, writer_max_tokens: int = 1024,
                     fetch_articles: bool = False, **over: Any) -> Settings:  # noqa: ANN401
    """Settings for one OpenAI-compatible endpoint, one feed and generous caps (the budget is not under test)."""
    def role(max_tokens: int) -> AgentSettings:
        return AgentSettings(base_url=llm_url, model=MODEL, max_tokens=max_tokens, max_calls_per_cycle=10_000,
                             token_budget_per_cycle=100_000_000, max_retries=3)

    return Settings(
        state_dir=state_dir,
        prices={MODEL: PRICE},
        agents=AgentsSettings(orchestrator=role(256), research=role(512), writer=role(writer_max_tokens), critic=role(256)),
        feeds=(FeedSettings(url=feed_url, name="bench"),),
        research=ResearchSettings(items_per_cycle=items_per_cycle, fetch_articles=fetch_articles),
        budget={"daily_cap": "1000", "per_cycle_cap": "1000", "min_balance": "0", "resume_balance": "0"},
        sustain={"enabled": False},  # the bench measures one plan (every item), not the sustain rule
        **over,
    )


@dataclass
class SelfpubRun:
    """A wired selfpub (journal, budget, orchestrator) on a SQLite file in state_dir."""

    settings: Settings
    channel: Any = "auto"  # noqa: ANN401 - "auto": the configured publishers (local outbox by default)
    http_client: Any = None  # noqa: ANN401 - for feeds; None: the daemon's default client
    llm: Any = None  # noqa: ANN401 - None: the daemon's MeteredLLM over the configured endpoint
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        state = open_state(self.settings)  # as the daemon opens it: every room's tables at head
        self.engine, self.journal, self.budget = state.engine, state.journal, state.budget
        deposit(self.journal, FUNDS, memo="bench funds")
        self.deps = build_deps(self.settings, self.journal, self.budget, llm=self.llm, channel=self.channel,
                               closers=self.closers, http_client=self.http_client)
        self.orchestrator = Orchestrator(self.deps)

    async def cycle(self) -> CycleReport:
        """One cycle, as the scheduler runs it."""
        return await self.orchestrator.run_cycle()

    async def aclose(self) -> None:
        """Close clients (last opened first) and the database."""
        while self.closers:
            result = self.closers.pop()()
            if hasattr(result, "__await__"):
                await result
        self.engine.dispose()

    def outbox_articles(self) -> list[str]:
        """Bodies of the articles in the local outbox (front matter removed)."""
        out = []
        for path in sorted((self.settings.state_dir / "outbox").glob("*.md")):
            text = path.read_text(encoding="utf-8")
            out.append(text.split("\n---\n", 1)[1] if text.startswith("---\n") and "\n---\n" in text else text)
        return out


@contextmanager
def critic_reads_whole_draft() -> Iterator[None]:
    """selfpub's critic shown the whole draft while in the block (agents.critic.review_view replaced)."""
    import agents.critic as critic
    from agents.text import strip_hashtags

    def whole(draft: Any) -> str:  # noqa: ANN401
        body = "\n".join(" ".join(critic.LINK_LABEL.sub(r"\1", p).split()) for p in draft.body_markdown.split("\n\n"))
        lines = [f"title: {draft.title}", f"description: {draft.description}", body]
        return "\n".join([*lines, f"bluesky: {strip_hashtags(draft.bsky_text)}"])

    original = critic.review_view
    critic.review_view = whole
    try:
        yield
    finally:
        critic.review_view = original


_WORDS = (
    "cache compiler kernel runtime parser scheduler socket buffer thread module package release driver "
    "database index query schema cluster container registry gateway proxy router firmware browser engine "
    "protocol library toolkit framework plugin extension service backend frontend pipeline workflow storage "
    "journal ledger stream queue broker worker daemon sandbox tracer profiler debugger linter formatter "
    "encoder decoder codec tokenizer allocator collector optimizer emulator bootloader hypervisor terminal"
).split()


def synthetic_items(n: int, salt: str, seed: int = 0) -> list[dict]:
    """n distinct items (different words, so no two are near-duplicates) with URLs unique per salt."""
    import random

    rng = random.Random(f"{seed}-{salt}")
    out = []
    for i in range(n):
        words = rng.sample(_WORDS, 12)
        title = f"{words[0].title()} {words[1]} {words[2]} ships {words[3]} support"
        summary = (f"The {words[4]} team released a {words[5]} for the {words[6]}. "
                   f"It replaces the {words[7]} {words[8]} and speeds up {words[9]} by {rng.randint(5, 60)} percent. "
                   f"Existing {words[10]} users can upgrade with one {words[11]} change.")
        out.append({"title": title, "url": f"https://news.example.org/{salt}/item-{i}.html", "summary": summary,
                    "tags": [words[0]], "published": "2025-07-01T09:00:00+00:00"})
    return out
