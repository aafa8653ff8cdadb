"""The router: where a role's call goes, and what to do when an attempt fails.

    role -> settings (UnknownRole) -> model: the sustain tier's (agents/sustain.py) when it names one,
            else by runway tier -> routes: [main endpoint, fallbacks...]
    for each route whose circuit breaker allows it:
        up to 1 + max_retries attempts, each one metered on its own (an attempt = a reservation):
            hold off       sleep out the endpoint's Retry-After ("not before", per endpoint)
            attempt        -> Metered(reply) from the meter
            answered       breaker closes; done
            rejected 4xx   408/409/429: retry; a json_schema request refused with 400/422: switch the
                           endpoint to JSON mode and resend (not counted); others: LLMRequestRejected
            5xx, ambiguous, not_sent
                           breaker counts a failure; retry after backoff (or Retry-After, capped);
                           an open circuit or spent retries: next route
    no route answered -> LLMUnavailable (retryable)

Classified by outcome and status code only, never by message text.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from agents.llm.breaker import Breaker
from agents.llm.errors import LLMRequestRejected, LLMUnavailable, UnknownRole
from agents.llm.meter import Metered, Route
from agents.llm.provider import ANSWERED, REJECTED, public_url
from agents.llm.structured import FORMAT_REFUSED_STATUS, JSON_OBJECT, JSON_SCHEMA
from config.settings import ROLES, AgentSettings, AgentsSettings
from kernel.clock import utcnow

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_SECONDS = 60.0  # a server asking for longer gets this much, then we retry or fail over
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 20.0
BREAKER_THRESHOLD = 3
BREAKER_COOLDOWN = timedelta(seconds=60)
RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx

# One attempt at a route in a JSON mode, numbered across the whole call (for the call log).
Attempt = Callable[[Route, str, int], Awaitable[Metered]]


class Router:
    """Tiers, fallbacks, circuit breakers, retries and Retry-After hold-offs for every role."""

    def __init__(
        self,
        agents: AgentsSettings,
        *,
        runway: Callable[[], float | None] = lambda: None,
        sustain_model: Callable[[str], str | None] = lambda role: None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        json_modes: dict[str, str] | None = None,
        breaker_threshold: int = BREAKER_THRESHOLD,
        breaker_cooldown: timedelta = BREAKER_COOLDOWN,
        max_retry_after: float = MAX_RETRY_AFTER_SECONDS,
    ):
        self.agents = agents
        self.runway = runway
        self.sustain_model = sustain_model
        self.clock = clock
        self._sleep = sleep
        self.json_modes = dict(json_modes or {})
        self._breaker_threshold = breaker_threshold
        self._breaker_cooldown = breaker_cooldown
        self.max_retry_after = max_retry_after
        self._breakers: dict[str, Breaker] = {}
        self._not_before: dict[str, datetime] = {}  # base_url -> no request before (a server's Retry-After)
        self._rng = random.Random()

    # -- where a call goes -----------------------------------------------------------

    def settings_of(self, role: str) -> AgentSettings:
        """The settings of a role, or UnknownRole."""
        if role not in ROLES:
            raise UnknownRole(f"unknown role {role!r}; one of {', '.join(ROLES)}", role=role)
        return self.agents.role(role)

    def model_for(self, role: str) -> str:
        """The role's model now: the sustain tier's for it, else the runway tier with the highest threshold
        the runway reaches, else its model."""
        cfg = self.settings_of(role)
        chosen = self.sustain_model(role)
        if chosen:
            return chosen
        if not cfg.tiers:
            return cfg.model
        runway = self.runway()
        if runway is None:
            return cfg.model
        reached = [t for t in cfg.tiers if t.min_runway_days <= runway]
        return max(reached, key=lambda t: t.min_runway_days).model if reached else cfg.model

    def routes(self, role: str) -> list[Route]:
        """Where a call of this role may go, in order: the main endpoint, then its fallbacks."""
        cfg = self.settings_of(role)
        return [Route(cfg.base_url, self.model_for(role))] + [Route(f.base_url, f.model) for f in cfg.fallbacks]

    def breaker(self, base_url: str) -> Breaker:
        """The circuit breaker of one endpoint."""
        if base_url not in self._breakers:
            self._breakers[base_url] = Breaker(self._breaker_threshold, self._breaker_cooldown)
        return self._breakers[base_url]

    # -- one call, across routes and retries ---------------------------------------------

    async def call(self, role: str, attempt: Attempt, *, structured: bool, task_id: str | None) -> tuple[Metered, Route, int]:
        """Try the routes in order until one answers; returns (the answer, its route, attempts sent)."""
        cfg = self.settings_of(role)
        last: str | None = None
        sent = 0
        tried: list[str] = []
        for route in self.routes(role):
            breaker = self.breaker(route.base_url)
            if not breaker.allow(self.clock()):
                tried.append(f"{public_url(route.base_url)} (circuit open)")
                continue
            tried.append(public_url(route.base_url))
            n = 0
            waited: datetime | None = None  # the hold-off this call already slept through
            while n <= cfg.max_retries:
                n += 1
                await self._hold_off(route.base_url, waited)
                sent += 1
                mode = self.json_modes.get(route.base_url, JSON_SCHEMA)
                done = await attempt(route, mode, sent)
                reply = done.reply
                if reply.outcome == ANSWERED:
                    breaker.success()
                    return done, route, sent
                status = reply.status or 0
                if reply.outcome == REJECTED and status < 500 and status not in RETRYABLE_STATUS:
                    if structured and mode == JSON_SCHEMA and status in FORMAT_REFUSED_STATUS:
                        self.json_modes[route.base_url] = JSON_OBJECT
                        n -= 1  # our request shape, not the endpoint's health
                        continue
                    raise LLMRequestRejected(
                        f"{role}: {public_url(route.base_url)} refused the request with HTTP {status} "
                        f"({reply.error_class})",
                        status_code=status, role=role, model=route.model, task_id=task_id,
                    )
                last = reply.error_class
                breaker.failure(self.clock())
                if reply.retry_after is not None:
                    waited = self._hold(route.base_url, reply.retry_after)
                if not breaker.allow(self.clock()) or n > cfg.max_retries:
                    break  # open circuit or retries spent: next endpoint
                await self._sleep(self._delay(n, reply.retry_after))
        raise LLMUnavailable(
            f"{role}: no endpoint answered ({', '.join(tried)}); last error {last}",
            last_error=last, role=role, model=self.model_for(role), task_id=task_id,
        )

    def _hold(self, base_url: str, retry_after: float) -> datetime:
        """Remember a server's Retry-After (capped): no request to this endpoint before then."""
        until = self.clock() + timedelta(seconds=min(max(retry_after, 0.0), self.max_retry_after))
        self._not_before[base_url] = max(until, self._not_before.get(base_url, until))
        return self._not_before[base_url]

    async def _hold_off(self, base_url: str, waited: datetime | None) -> None:
        """Sleep until the endpoint's Retry-After has passed (unless this call already slept it out)."""
        until = self._not_before.get(base_url)
        if until is None or until == waited:
            return
        left = (until - self.clock()).total_seconds()
        if left <= 0:
            self._not_before.pop(base_url, None)
            return
        log.info("llm endpoint held off by Retry-After",
                 extra={"endpoint": public_url(base_url), "wait_seconds": round(left, 3)})
        await self._sleep(min(left, self.max_retry_after))

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
        return ceiling * (0.5 + self._rng.random() / 2)
