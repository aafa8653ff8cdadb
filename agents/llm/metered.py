"""MeteredLLM: the one LLM client of a daemon, built from four layers with one job each.

    MeteredLLM.complete(role, messages, response_model=...)          agents.protocol.LLM
      |  refuse unpriced models (also fallbacks) before anything is sent: PriceMissing
      v
    router      agents/llm/router.py      role -> tier model -> routes; breakers, retries, Retry-After
      |  one attempt per (route, try)
      v
    meter       agents/llm/meter.py       estimate, caps, reserve, mark sent, settle by outcome
      |                                   (commit / book worst case / release, retried), call log, span
      v
    provider    agents/llm/provider.py    the wire (the only importer of openai):
                                          Reply(not_sent | answered | rejected | ambiguous, ...)
    structured  agents/llm/structured.py  the schema sent, validation, the one repair call
    x402        agents/llm/x402pay.py     an endpoint answering 402 is paid under the spend policy
                (agents/llm/spendpolicy.py), capped by the attempt's reservation, booked by the
                meter through agents/llm/paidcall.py

Beside the layers: agents/llm/calllog.py (one row per request, its own migrations in
agents/llm/migrations, version table alembic_version_agents_llm) and agents/llm/embedded.py (the
bundled local model served as an OpenAI-compatible child process).

A reply that does not match response_model gets one repair call (the bad reply and the errors shown
to the model); still wrong: StructuredOutputError carrying what both calls cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from opentelemetry import trace
from pydantic import BaseModel

from agents.llm import paidcall
from agents.llm.calllog import CallLog
from agents.llm.breaker import Breaker
from agents.llm.errors import PriceMissing, StructuredOutputError, repairing
from agents.llm.meter import MIN_MAX_TOKENS, ROLE_USAGE_CYCLES, Meter, Metered, Route
from agents.llm.pricing import schema_text
from agents.llm.provider import OpenAIProvider, Provider, public_url
from agents.llm.router import BREAKER_COOLDOWN, BREAKER_THRESHOLD, MAX_RETRY_AFTER_SECONDS, Router
from agents.llm.structured import JSON_OBJECT, JSON_SCHEMA, compact_schema, repair_messages, response_format, validate
from agents.protocol import Completion, Usage
from config.settings import AgentSettings, AgentsSettings, ModelPrice
from kernel.clock import utcnow
from ledger.budget import Budget

__all__ = [
    "JSON_OBJECT", "JSON_SCHEMA", "ROLE_USAGE_CYCLES", "MeteredLLM", "Route", "public_url", "utcnow",
]

# Where each endpoint's requests go: AsyncOpenAI clients (or Providers), by base_url or built on demand.
Clients = Mapping[str, Any] | Callable[[str], Any]


class MeteredLLM:
    """The one LLM client of a daemon, shared by every role; implements agents.protocol.LLM."""

    def __init__(
        self,
        agents: AgentsSettings,
        prices: Mapping[str, ModelPrice],
        budget: Budget,
        clients: Clients,
        *,
        runway: Callable[[], float | None] = lambda: None,
        sustain_model: Callable[[str], str | None] = lambda role: None,
        clock: Callable[[], datetime] = utcnow,
        log_to: CallLog | None = None,
        tracer: trace.Tracer | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        json_modes: Mapping[str, str] | None = None,
        seed: int | None = None,
        breaker_threshold: int = BREAKER_THRESHOLD,
        breaker_cooldown: timedelta = BREAKER_COOLDOWN,
        max_retry_after: float = MAX_RETRY_AFTER_SECONDS,
        min_max_tokens: int = MIN_MAX_TOKENS,
    ):
        self.agents = agents
        self.prices = dict(prices)
        self.seed = seed
        self.calllog = log_to
        self._clients = clients
        self._providers: dict[str, Provider] = {}
        self.router = Router(
            agents, runway=runway, sustain_model=sustain_model, clock=clock, sleep=sleep, json_modes=dict(json_modes or {}),
            breaker_threshold=breaker_threshold, breaker_cooldown=breaker_cooldown, max_retry_after=max_retry_after,
        )
        self.meter = Meter(budget, calllog=log_to, tracer=tracer, sleep=sleep, min_max_tokens=min_max_tokens)

    # -- the stable surface (orchestrator, daemon, bench) -------------------------------

    @property
    def budget(self) -> Budget:
        return self.meter.budget

    @budget.setter
    def budget(self, budget: Budget) -> None:
        self.meter.budget = budget

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.router.clock

    @property
    def runway(self) -> Callable[[], float | None]:
        return self.router.runway

    @property
    def _role_usage(self) -> dict[str, dict[str, list[int]]]:
        return self.meter.role_usage

    def settings_of(self, role: str) -> AgentSettings:
        """The settings of a role, or UnknownRole."""
        return self.router.settings_of(role)

    def model_for(self, role: str) -> str:
        """The role's model now: the sustain tier's, else by runway tier, else its own (the router's rule)."""
        return self.router.model_for(role)

    def routes(self, role: str) -> list[Route]:
        """Where a call of this role may go, in order: the main endpoint, then its fallbacks."""
        return self.router.routes(role)

    def breaker(self, base_url: str) -> Breaker:
        """The circuit breaker of one endpoint."""
        return self.router.breaker(base_url)

    def price(self, model: str, role: str | None = None, task_id: str | None = None) -> ModelPrice:
        """The configured price of a model, or PriceMissing."""
        try:
            return self.prices[model]
        except KeyError:
            raise PriceMissing(model, role=role, task_id=task_id) from None

    def provider(self, base_url: str) -> Provider:
        """The provider of one endpoint (an AsyncOpenAI given for it is wrapped once)."""
        if base_url not in self._providers:
            given = self._clients(base_url) if callable(self._clients) and not isinstance(self._clients, Mapping) \
                else self._clients[base_url]
            # An SDK client (anything with chat.completions) is wrapped; a Provider is used as it is.
            self._providers[base_url] = OpenAIProvider(given) if hasattr(given, "chat") else given
        return self._providers[base_url]

    # -- the protocol ------------------------------------------------------------

    async def complete(
        self,
        role: str,
        messages: Sequence[dict[str, str]],
        *,
        response_model: type[BaseModel] | None = None,
        max_tokens: int | None = None,
        task_id: str | None = None,
        cycle_id: str | None = None,
    ) -> Completion:
        """Reserve, call, post the actual cost; parse into response_model when given."""
        for r in self.routes(role):  # refuse before any call, also for a fallback we might reach
            self.price(r.model, role, task_id)
        ids = {"task_id": task_id, "cycle_id": cycle_id}
        first, route, attempts = await self._call(role, list(messages), response_model, max_tokens, ids)
        if response_model is None:
            return self._completion(first, route, attempts)
        parsed, errors = validate(response_model, first.reply.text)
        if not errors:
            return self._completion(first, route, attempts, parsed=parsed)
        repair = repair_messages(messages, first.reply.text, errors)
        with repairing(first.cost):  # a repair call that fails (even a timeout) still leaves the paid, invalid reply
            second, route2, attempts2 = await self._call(role, repair, response_model, max_tokens, ids)
        parsed, errors2 = validate(response_model, second.reply.text)
        total_cost = first.cost + second.cost
        if errors2:
            raise StructuredOutputError(
                f"{role}: reply did not match {response_model.__name__} after one repair call: "
                + "; ".join(errors2[:5]),
                errors=errors2, cost=total_cost, role=role, model=route2.model, task_id=task_id,
            )
        usage = Usage(first.usage.input_tokens + second.usage.input_tokens,
                      first.usage.output_tokens + second.usage.output_tokens)
        done = self._completion(second, route2, attempts + attempts2, parsed=parsed)
        return Completion(
            text=second.reply.text, usage=usage, cost=total_cost, model=route2.model, endpoint=done.endpoint,
            parsed=parsed, calls=2, meta={**done.meta, "repaired": True, "first_errors": errors},
        )

    async def _call(
        self, role: str, messages: list[dict[str, str]], response_model: type[BaseModel] | None,
        max_tokens: int | None, ids: dict[str, str | None],
    ) -> tuple[Metered, Route, int]:
        cfg = self.settings_of(role)
        schema = compact_schema(response_model.model_json_schema()) if response_model else None
        check = (lambda text: not validate(response_model, text)[1]) if response_model else None

        async def attempt(route: Route, mode: str, n: int) -> Metered:
            fmt = response_format(mode, response_model.__name__, schema) if response_model else None
            return await self.meter.send(
                role=role, cfg=cfg, route=route, price=self.price(route.model, role, ids["task_id"]),
                provider=self.provider(route.base_url), messages=messages, schema_text=schema_text(schema),
                response_format=fmt, seed=self.seed, max_tokens=max_tokens, ids=ids, n=n, check=check,
            )

        with paidcall.call_scope():  # the attempts of one call resend one x402 payment, never sign two
            return await self.router.call(role, attempt, structured=schema is not None, task_id=ids["task_id"])

    def _completion(self, m: Metered, route: Route, attempts: int, parsed: Any = None) -> Completion:
        return Completion(
            text=m.reply.text, usage=m.usage, cost=m.cost, model=route.model, endpoint=public_url(route.base_url),
            parsed=parsed, calls=1,
            meta={
                "attempts": attempts, "max_tokens": m.max_tokens, "reserved": m.reserved,
                "finish_reason": m.reply.finish_reason, "usage_reported": m.reply.usage is not None,
                "booked": m.booked,
            },
        )
