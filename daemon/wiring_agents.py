"""Build the orchestrator and its agents from Settings: the only place that makes their real clients.

`build_deps(settings, journal, budget)` gives the OrchestratorDeps the daemon's
cycle job uses; `build_orchestrator(app_context)` gives the CLI a ready
AgentsRuntime (orchestrator + the things to close: the embedded model server,
HTTP clients, the publish channel). With `base_url = "embedded"` the embedded
llama-cpp server is started here as a child process and stopped on close.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx

from agents.critic import Critic
from agents.messages import FeedItem
from agents.orchestrator import Candidate, Orchestrator, OrchestratorDeps
from agents.sustain import SustainRule
from agents.tasks import TaskStore
from agents.writer import Writer
from config.settings import EMBEDDED, Settings
from ledger.budget import Budget
from ledger.journal import Journal
from ledger.reads import runway_days
from publishers import BLUESKY_APP_URL
from publishers.protocol import PublishChannel

if TYPE_CHECKING:  # the model clients and the research agent load only when they are built
    import httpx2

    from agents.feeds import FeedReport
    from agents.llm import MeteredLLM
    from agents.protocol import LLM
    from agents.research import ResearchAgent
    from config.settings import FeedSettings
    from daemon.context import AppContext

log = logging.getLogger(__name__)


class ResearchFeed:
    """FeedSource over the research agent: new items of the configured feeds, with their novelty."""

    def __init__(self, research: ResearchAgent, feeds: Sequence[FeedSettings]):
        self.research = research
        self.feeds = tuple(feeds)
        self.reports: list[FeedReport] = []  # how each feed went at the last fetch (the cycle report reads them)

    async def candidates(self) -> list[Candidate]:
        """Fetch every feed; new items only (the research store remembers what it saw)."""
        if not self.feeds:
            return []
        collection = await self.research.collect(self.feeds)
        self.reports = list(collection.reports)
        fresh = {it.url for it in collection.items}
        waiting = [it for it in self.research.backlog() if it.url not in fresh]
        return [Candidate(it, self.research.novelty(it)) for it in [*collection.items, *waiting]]

    def mark_covered(self, item: FeedItem) -> None:
        """The topic is being written about: later near-duplicates are skipped."""
        self.research.mark_covered(item)


@dataclass
class AgentsRuntime:
    """A wired orchestrator and what must be closed after it."""

    orchestrator: Orchestrator
    deps: OrchestratorDeps
    closers: list[Callable[[], Any]] = field(default_factory=list)

    async def aclose(self) -> None:
        """Close clients and stop the embedded server (last opened first)."""
        while self.closers:
            result = self.closers.pop()()
            if inspect.isawaitable(result):
                await result


def _runway(journal: Journal, budget: Budget) -> Callable[[], float | None]:
    """Days of runway now: the ledger's one figure, on the daemon's own budget."""

    def runway() -> float | None:
        return runway_days(journal, budget)

    return runway


def paying_http_client(settings: Settings, journal: Journal) -> httpx2.AsyncClient | None:
    """The LLM clients' HTTP client when [x402.spend] is enabled: it pays a 402 under the spend policy.

    The payer is the wallet's keystore (wallet.keystore_file); the daily cap reads the ledger.
    """
    spend = settings.x402.spend
    if not spend.enabled:
        return None
    import httpx2

    from agents.llm.spendpolicy import SpendPolicy
    from agents.llm.x402pay import PayingTransport, X402Payer
    from config.loader import ConfigError, Problem
    from kernel.clock import utcnow
    from ledger.query import midnight
    from ledger.reads import paid_over_x402
    from wallet.keystore import load_key

    w = settings.wallet
    if w.keystore_file is None or w.keystore_password_value is None:
        raise ConfigError([Problem("x402.spend.enabled", "paying for inference signs with the wallet's key, and "
                                   "there is none", "set wallet.keystore_file and wallet.keystore_password "
                                   "(file or env), or x402.spend.enabled = false")])
    from eth_account import Account

    account = Account.from_key(load_key(w.keystore_file, w.keystore_password_value.get_secret_value()))
    policy = SpendPolicy(spend, lambda: paid_over_x402(journal, midnight(utcnow())))
    return httpx2.AsyncClient(transport=PayingTransport(X402Payer(policy, account)))


def build_llm(settings: Settings, journal: Journal, budget: Budget, closers: list[Callable[[], Any]],  # noqa: PLR0913
              runway: Callable[[], float | None] | None = None, sustain: SustainRule | None = None,
              front_embedded: Callable[[str], str] | None = None) -> MeteredLLM:
    """The metered client, starting the embedded model server when a role asks for it.

    front_embedded: the embedded server's base_url -> the base_url the roles call instead (the demo's paid
    endpoint in front of it, payments/paidllm.py).
    """
    from agents.llm.calllog import CallLog
    from agents.llm.embedded import EmbeddedServer, embedded_json_modes, embedded_roles, resolve_embedded
    from agents.llm import MeteredLLM, clients_for

    agents = settings.agents
    json_modes: dict[str, str] = {}
    if embedded_roles(agents):
        server = EmbeddedServer().start()
        closers.append(server.stop)
        base_url = front_embedded(server.base_url) if front_embedded is not None else server.base_url
        agents = resolve_embedded(agents, base_url)
        json_modes = embedded_json_modes(base_url)
    calllog = CallLog(journal.engine)
    paying = paying_http_client(settings, journal)  # None unless [x402.spend] enabled
    clients = clients_for(agents, **({"http_client": paying} if paying is not None else {}))
    for c in clients.values():
        closers.append(c.close)
    return MeteredLLM(agents, settings.prices, budget, clients, runway=runway or (lambda: None), log_to=calllog,
                      json_modes=json_modes, sustain_model=sustain.model if sustain else (lambda role: None))


def build_deps(
    settings: Settings,
    journal: Journal,
    budget: Budget,
    *,
    llm: LLM | None = None,
    channel: PublishChannel | Literal["auto"] | None = "auto",
    closers: list[Callable[[], Any]] | None = None,
    http_client: httpx.AsyncClient | None = None,
    front_embedded: Callable[[str], str] | None = None,
) -> OrchestratorDeps:
    """OrchestratorDeps from settings; resources to close go to `closers` (or atexit when not given)."""
    from agents.research import ResearchAgent
    from agents.research_store import ResearchStore

    own = closers is None
    closers = [] if closers is None else closers
    engine = journal.engine
    tasks = TaskStore(engine, persona=settings.persona)
    store = ResearchStore(engine)
    runway = _runway(journal, budget)
    sustain = SustainRule(journal, settings.sustain, clock=budget.clock)  # read once per cycle, at planning
    if llm is None:
        llm = build_llm(settings, journal, budget, closers, runway, sustain, front_embedded)
    if http_client is None:
        http_client = httpx.AsyncClient(timeout=settings.research.fetch_timeout_seconds)
        closers.append(http_client.aclose)
    sections = settings.agents.writer.base_url == EMBEDDED  # llama.cpp: the writer's schema as a grammar
    research = ResearchAgent(llm, store, settings.research, client=http_client,
                             max_tokens=settings.agents.research.max_tokens,
                             one_call=settings.research.brief == "writer" and not sections)
    if channel == "auto":
        from daemon.wiring_publishers import build_channel  # deferred: atproto loads only when a channel is built

        channel = build_channel(settings, engine)
        closers.append(channel.aclose)
    if own and closers:
        atexit.register(_close_sync, list(closers))
    return OrchestratorDeps(
        settings=settings, llm=llm, budget=budget, journal=journal, tasks=tasks, research=research,
        feed=ResearchFeed(research, settings.feeds),
        writer=Writer(llm, max_tokens=settings.agents.writer.max_tokens, disclosure=settings.disclosure,
                      structured=sections),
        critic=Critic(llm, settings.review, max_tokens=settings.agents.critic.max_tokens,
                      platforms=(settings.publishers.devto.base_url, BLUESKY_APP_URL), disclosure=settings.disclosure,
                      structured=settings.agents.critic.base_url == EMBEDDED),  # llama.cpp: a rubric as grammar
        channel=channel, runway=runway, sustain=sustain,
    )


def _close_sync(closers: list[Callable[[], Any]]) -> None:
    for close in reversed(closers):
        try:
            result = close()
            if inspect.isawaitable(result):
                asyncio.run(result)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            log.debug("close at exit failed", exc_info=True)


def build_orchestrator(app_context: AppContext, *, llm: LLM | None = None,
                       channel: PublishChannel | Literal["auto"] | None = "auto") -> AgentsRuntime:
    """A fully wired orchestrator for one CLI invocation; `await runtime.aclose()` when done."""
    closers: list[Callable[[], Any]] = []
    try:
        deps = build_deps(app_context.settings, app_context.journal, app_context.budget, llm=llm, channel=channel,
                          closers=closers)
    except BaseException:
        _close_sync(closers)
        raise
    return AgentsRuntime(Orchestrator(deps), deps, closers)
