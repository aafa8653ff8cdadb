"""MeteredLLM: every chat completion reserved, called, posted and logged.

One request, top to bottom:

    route      role settings -> model by runway tier -> fallbacks behind circuit breakers
    refuse     no price for the model, a per-cycle role cap, or a budget limit (BudgetExceeded)
    reserve    worst case = estimated prompt + max_tokens at the model's price (max_tokens
               lowered first when the budget's headroom is smaller)
    call       AsyncOpenAI with its own retries off: every attempt is reserved and metered here
    post       commit the cost of the usage the API reported (a failed call: what its error
               body reports, else release); the hold is always closed
    log        one `llm_call` row and one OpenTelemetry span per attempt

Retries: 408/409/429/5xx, timeouts and connection errors, with backoff and
Retry-After (capped), classified by exception type and status code only. A
Retry-After also holds the endpoint off for later calls: nothing is sent to it
before that time ("not before", per endpoint).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import openai
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from agents.calllog import ERROR, INVALID, OK, REFUSED, CallLog, CallRecord
from agents.llm.breaker import Breaker
from agents.llm.errors import (
    LLMRequestRejected,
    LLMUnavailable,
    PriceMissing,
    StructuredOutputError,
    UnknownRole,
)
from agents.llm.pricing import cost, estimate_prompt_tokens, max_output_within, schema_text
from agents.protocol import Completion, Usage
from config.settings import ROLES, AgentSettings, AgentsSettings, ModelPrice
from ledger.budget import Budget, BudgetExceeded, Hold

log = logging.getLogger(__name__)

MIN_MAX_TOKENS = 16  # below this a reply is useless: refuse instead of shrinking further
MAX_RETRY_AFTER_SECONDS = 60.0  # a server asking for longer gets this much, then we retry or fail over
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 20.0
BREAKER_THRESHOLD = 3
BREAKER_COOLDOWN = timedelta(seconds=60)
# Role counters are kept for this many most recent cycles only (a daemon runs one cycle at a time);
# an older cycle asked about again reloads its totals from the call log, so the caps stay exact.
ROLE_USAGE_CYCLES = 4
RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx
JSON_SCHEMA = "json_schema"  # response_format {"type": "json_schema", ...} (OpenAI and most servers)
JSON_OBJECT = "json_object"  # JSON mode with a schema (llama-cpp-python's server)


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def public_url(url: str) -> str:
    """A URL without credentials or query, safe for logs and rows."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class Route:
    """One place a role's call may go: an endpoint and the model to ask there."""

    base_url: str
    model: str


@dataclass
class _Attempt:
    """What one sent request produced."""

    text: str
    usage: Usage
    cost: int
    reserved: int
    max_tokens: int
    finish_reason: str | None
    usage_reported: bool


class _Retryable(Exception):
    """A transient failure of one attempt (internal: turned into failover or LLMUnavailable)."""

    def __init__(self, error_class: str, retry_after: float | None = None):
        self.error_class = error_class
        self.retry_after = retry_after
        super().__init__(error_class)


class _FormatUnsupported(Exception):
    """The endpoint refused response_format json_schema: switch it to JSON mode."""


class MeteredLLM:
    """The one LLM client of a daemon, shared by every role; implements agents.protocol.LLM."""

    def __init__(
        self,
        agents: AgentsSettings,
        prices: Mapping[str, ModelPrice],
        budget: Budget,
        clients: Mapping[str, openai.AsyncOpenAI] | Callable[[str], openai.AsyncOpenAI],
        *,
        runway: Callable[[], float | None] = lambda: None,
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
        self.budget = budget
        self._clients = clients
        self.runway = runway
        self.clock = clock
        self.calllog = log_to
        self.tracer = tracer or trace.get_tracer("selfpub.agents.llm")
        self._sleep = sleep
        self._json_modes = dict(json_modes or {})
        self.seed = seed
        self._breaker_threshold = breaker_threshold
        self._breaker_cooldown = breaker_cooldown
        self.max_retry_after = max_retry_after
        self.min_max_tokens = min_max_tokens
        self._breakers: dict[str, Breaker] = {}
        self._not_before: dict[str, datetime] = {}  # base_url -> no request before (a server's Retry-After)
        self._role_usage: dict[str, dict[str, list[int]]] = {}  # cycle -> role -> [calls, tokens], recent cycles
        self._rng = random.Random()

    # -- routing -----------------------------------------------------------------

    def settings_of(self, role: str) -> AgentSettings:
        """The settings of a role, or UnknownRole."""
        if role not in ROLES:
            raise UnknownRole(f"unknown role {role!r}; one of {', '.join(ROLES)}", role=role)
        return self.agents.role(role)

    def model_for(self, role: str) -> str:
        """The role's model now: the tier with the highest threshold the runway reaches, else its model."""
        cfg = self.settings_of(role)
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

    def price(self, model: str, role: str | None = None, task_id: str | None = None) -> ModelPrice:
        """The configured price of a model, or PriceMissing."""
        try:
            return self.prices[model]
        except KeyError:
            raise PriceMissing(model, role=role, task_id=task_id) from None

    def _client(self, base_url: str) -> openai.AsyncOpenAI:
        if callable(self._clients) and not isinstance(self._clients, Mapping):
            return self._clients(base_url)
        return self._clients[base_url]

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
        routes = self.routes(role)
        for r in routes:  # refuse before any call, also for a fallback we might reach
            self.price(r.model, role, task_id)
        ids = {"task_id": task_id, "cycle_id": cycle_id}
        first, route, attempts = await self._call(role, list(messages), response_model, max_tokens, ids)
        if response_model is None:
            return self._completion(first, route, attempts)
        parsed, errors = _validate(response_model, first.text)
        if not errors:
            return self._completion(first, route, attempts, parsed=parsed)
        # One repair call: show the model its reply and what was wrong with it.
        repair = [
            *messages,
            {"role": "assistant", "content": first.text},
            {"role": "user", "content": _repair_prompt(errors)},
        ]
        second, route2, attempts2 = await self._call(role, repair, response_model, max_tokens, ids)
        parsed, errors2 = _validate(response_model, second.text)
        total_cost = first.cost + second.cost
        if errors2:
            raise StructuredOutputError(
                f"{role}: reply did not match {response_model.__name__} after one repair call: "
                + "; ".join(errors2[:5]),
                errors=errors2, cost=total_cost, role=role, model=route2.model, task_id=task_id,
            )
        usage = Usage(first.usage.input_tokens + second.usage.input_tokens, first.usage.output_tokens + second.usage.output_tokens)
        done = self._completion(second, route2, attempts + attempts2, parsed=parsed)
        return Completion(
            text=second.text, usage=usage, cost=total_cost, model=route2.model, endpoint=done.endpoint,
            parsed=parsed, calls=2, meta={**done.meta, "repaired": True, "first_errors": errors},
        )

    def _completion(self, a: _Attempt, route: Route, attempts: int, parsed: Any = None) -> Completion:
        return Completion(
            text=a.text, usage=a.usage, cost=a.cost, model=route.model, endpoint=public_url(route.base_url),
            parsed=parsed, calls=1,
            meta={
                "attempts": attempts, "max_tokens": a.max_tokens, "reserved": a.reserved,
                "finish_reason": a.finish_reason, "usage_reported": a.usage_reported,
            },
        )

    # -- routing, retries, failover --------------------------------------------------

    async def _call(
        self, role: str, messages: list[dict[str, str]], response_model: type[BaseModel] | None,
        max_tokens: int | None, ids: dict[str, str | None],
    ) -> tuple[_Attempt, Route, int]:
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
            attempt = 0
            waited: datetime | None = None  # the hold-off this call already slept through
            while attempt <= cfg.max_retries:
                attempt += 1
                await self._hold_off(route.base_url, waited)
                sent += 1
                try:
                    result = await self._attempt(role, cfg, route, messages, response_model, max_tokens, ids, sent)
                except _FormatUnsupported:
                    self._json_modes[route.base_url] = JSON_OBJECT
                    attempt -= 1  # our request shape, not the endpoint's health
                    continue
                except _Retryable as exc:
                    last = exc.error_class
                    breaker.failure(self.clock())
                    if exc.retry_after is not None:
                        waited = self._hold(route.base_url, exc.retry_after)
                    if not breaker.allow(self.clock()) or attempt > cfg.max_retries:
                        break  # open circuit or retries spent: next endpoint
                    await self._sleep(self._delay(attempt, exc.retry_after))
                    continue
                breaker.success()
                return result, route, sent
        raise LLMUnavailable(
            f"{role}: no endpoint answered ({', '.join(tried)}); last error {last}",
            last_error=last, role=role, model=self.model_for(role), task_id=ids["task_id"],
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

    # -- caps and budget ---------------------------------------------------------------

    def _usage_of(self, role: str, cycle_id: str) -> list[int]:
        roles = self._role_usage.get(cycle_id)
        if roles is None:
            roles = self._role_usage[cycle_id] = {}
            while len(self._role_usage) > ROLE_USAGE_CYCLES:  # bounded: one entry per cycle would grow forever
                del self._role_usage[next(iter(self._role_usage))]
        if role not in roles:
            # After a restart (or for a cycle pruned above), what it already used is in the call log.
            t = self.calllog.totals(cycle_id=cycle_id, role=role) if self.calllog else None
            roles[role] = [t.calls, t.tokens] if t else [0, 0]
        return roles[role]

    def _refuse(self, exc: BudgetExceeded, role: str, route: Route, ids: dict, n: int) -> BudgetExceeded:
        self._record(CallRecord(
            role=role, model=route.model, endpoint=public_url(route.base_url), outcome=REFUSED,
            error_class=f"BudgetExceeded:{exc.limit}", attempt=n, **ids,
        ))
        log.info("llm call refused", extra={"role": role, "model": route.model, "limit": exc.limit, **ids})
        return exc

    def _plan(
        self, role: str, cfg: AgentSettings, route: Route, price: ModelPrice, prompt: int,
        max_tokens: int | None, ids: dict, n: int,
    ) -> tuple[int, int]:
        """Apply the role caps and the budget headroom: returns (max_tokens, worst-case cost)."""
        mt = max_tokens or cfg.max_tokens
        floor = min(self.min_max_tokens, mt)
        cycle_id = ids["cycle_id"]
        if cycle_id is not None:
            calls, tokens = self._usage_of(role, cycle_id)
            if calls >= cfg.max_calls_per_cycle:
                raise self._refuse(BudgetExceeded("role_calls", calls + 1, cfg.max_calls_per_cycle - calls, role), role, route, ids, n)
            left = cfg.token_budget_per_cycle - tokens
            if prompt + mt > left:
                if left - prompt < floor:
                    raise self._refuse(BudgetExceeded("role_tokens", prompt + floor, left, role), role, route, ids, n)
                mt = left - prompt
        worst = cost(price, prompt, mt)
        room = self.budget.headroom(cycle_id)
        if worst > room:
            fit = max_output_within(price, prompt, room)
            if fit >= floor:
                mt = min(mt, fit)
                worst = cost(price, prompt, mt)
            # else: reserve() refuses with the name of the limit that bit
        return mt, worst

    def _reserve(self, role: str, route: Route, price: ModelPrice, worst: int, ids: dict, n: int) -> Hold:
        try:
            return self.budget.reserve(
                role, worst, model=route.model, provider=price.provider,
                cycle_id=ids["cycle_id"], task_id=ids["task_id"],
            )
        except BudgetExceeded as exc:
            raise self._refuse(exc, role, route, ids, n) from None

    # -- one attempt -----------------------------------------------------------------------

    async def _attempt(
        self, role: str, cfg: AgentSettings, route: Route, messages: list[dict[str, str]],
        response_model: type[BaseModel] | None, max_tokens: int | None, ids: dict, n: int,
    ) -> _Attempt:
        schema = compact_schema(response_model.model_json_schema()) if response_model else None
        price = self.price(route.model, role, ids["task_id"])
        mode = self._json_modes.get(route.base_url, JSON_SCHEMA)
        prompt = estimate_prompt_tokens(messages, schema_text(schema))
        mt, worst = self._plan(role, cfg, route, price, prompt, max_tokens, ids, n)
        hold = self._reserve(role, route, price, worst, ids, n)
        counters = self._usage_of(role, ids["cycle_id"]) if ids["cycle_id"] is not None else None
        if counters is not None:
            counters[0] += 1
            counters[1] += prompt + mt  # pending until the reported usage replaces it
        closed = False
        used = Usage()
        spent = 0
        outcome, error_class, status = ERROR, None, None
        started = time.perf_counter()
        kwargs: dict[str, Any] = {
            "model": route.model, "messages": messages, "max_tokens": mt, "temperature": cfg.temperature,
            "timeout": cfg.timeout_seconds,
        }
        if self.seed is not None:
            kwargs["seed"] = self.seed
        if schema is not None:
            kwargs["response_format"] = _response_format(mode, response_model.__name__, schema)
        with self.tracer.start_as_current_span(f"chat {route.model}", kind=trace.SpanKind.CLIENT) as span:
            _span_request(span, role, route, price, mt, cfg.temperature, ids)
            try:
                resp = await self._client(route.base_url).chat.completions.create(**kwargs)
                text, finish, reported = _read(resp)
                used = reported or Usage()
                # No usage in the reply: we cannot know, so the held worst case is what it cost.
                spent = cost(price, used.input_tokens, used.output_tokens) if reported else worst
                self.budget.commit(hold, spent, memo=f"{role} {route.model}")
                closed = True
                outcome = OK
                return _Attempt(text, used, spent, worst, mt, finish, reported is not None)
            except openai.APIStatusError as exc:
                status = exc.status_code
                error_class = type(exc).__name__
                reported = _usage_from_error(exc)
                if reported is not None:
                    used = reported
                    spent = cost(price, used.input_tokens, used.output_tokens)
                    self.budget.commit(hold, spent, memo=f"{role} {route.model} failed ({status})")
                    closed = True
                if status in RETRYABLE_STATUS or status >= 500:
                    raise _Retryable(error_class, _retry_after(exc.response)) from None
                if schema is not None and mode == JSON_SCHEMA and status in (400, 422):
                    raise _FormatUnsupported() from None
                raise LLMRequestRejected(
                    f"{role}: {public_url(route.base_url)} refused the request with HTTP {status} ({error_class})",
                    status_code=status, role=role, model=route.model, task_id=ids["task_id"],
                ) from None
            except openai.APIConnectionError as exc:  # includes APITimeoutError
                error_class = type(exc).__name__
                raise _Retryable(error_class) from None
            except ValueError as exc:  # a 200 whose body is not JSON
                error_class = type(exc).__name__
                # The endpoint served it but we cannot read what it used: post the held worst case.
                spent = worst
                self.budget.commit(hold, spent, memo=f"{role} {route.model} unreadable reply")
                closed = True
                raise _Retryable(error_class) from None
            finally:
                if not closed:
                    self.budget.release(hold)
                if counters is not None:
                    counters[1] += used.total - (prompt + mt)
                latency = int((time.perf_counter() - started) * 1000)
                _span_result(span, used, spent, outcome, error_class)
                if outcome == OK and response_model is not None and _validate(response_model, text)[1]:
                    outcome = INVALID
                self._record(CallRecord(
                    role=role, model=route.model, endpoint=public_url(route.base_url), outcome=outcome,
                    input_tokens=used.input_tokens, output_tokens=used.output_tokens, cost=spent, reserved=worst,
                    latency_ms=latency, error_class=error_class, status_code=status, attempt=n,
                    reservation_id=hold.id, **ids,
                ))
                log.info(
                    "llm call",
                    extra={
                        "role": role, "model": route.model, "endpoint": public_url(route.base_url), "outcome": outcome,
                        "input_tokens": used.input_tokens, "output_tokens": used.output_tokens, "cost_ucr": spent,
                        "latency_ms": latency, "error_class": error_class, **ids,
                    },
                )

    def _record(self, rec: CallRecord) -> None:
        if self.calllog is not None:
            self.calllog.record(rec)


# -- helpers ---------------------------------------------------------------------------


def _response_format(mode: str, name: str, schema: dict) -> dict[str, Any]:
    if mode == JSON_OBJECT:  # no name field here: the schema's title carries it
        return {"type": "json_object", "schema": {"title": name, **schema}}
    # strict is left out: false is the default, and every byte here is prompt tokens on a hosted provider.
    return {"type": "json_schema", "json_schema": {"name": name[:64] or "reply", "schema": schema}}


# Keywords that only annotate a schema: a grammar ignores them, a hosted provider bills them as prompt.
SCHEMA_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment"})
_NAME_MAPS = frozenset({"properties", "patternProperties"})  # their keys are field names, not keywords


def compact_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema as sent: $refs inlined, annotations dropped, every constraint kept."""
    defs = schema.get("$defs") or {}
    recursive: set[str] = set()

    def walk(node: Any, path: tuple[str, ...]) -> Any:  # noqa: ANN401
        if isinstance(node, list):
            return [walk(n, path) for n in node]
        if not isinstance(node, Mapping):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
            name = ref[8:]
            if name in path:  # a recursive model: keep this one reference and its definition
                recursive.add(name)
                return {"$ref": ref}
            merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return walk(merged, (*path, name))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in SCHEMA_ANNOTATIONS or key == "$defs":
                continue
            if key in _NAME_MAPS and isinstance(value, Mapping):
                out[key] = {field: walk(sub, path) for field, sub in value.items()}
            else:
                out[key] = walk(value, path)
        return out

    out = walk(schema, ())
    kept: dict[str, Any] = {}
    while pending := sorted(recursive - kept.keys()):  # walking a definition may find another recursive one
        for name in pending:
            kept[name] = walk(defs[name], (name,))
    if kept:
        out["$defs"] = kept
    return out


def _read(resp: Any) -> tuple[str, str | None, Usage | None]:
    choice = resp.choices[0] if resp.choices else None
    text = (choice.message.content or "") if choice else ""
    finish = choice.finish_reason if choice else None
    u = resp.usage
    usage = Usage(int(u.prompt_tokens or 0), int(u.completion_tokens or 0)) if u is not None else None
    return text, finish, usage


def _usage_from_error(exc: openai.APIStatusError) -> Usage | None:
    """Usage an error response reports (top level or inside "error"), if any."""
    try:
        body = exc.response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    usage = body.get("usage")
    if usage is None and isinstance(body.get("error"), dict):
        usage = body["error"].get("usage")
    if not isinstance(usage, dict):
        return None
    try:
        return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    except (TypeError, ValueError):
        return None


def _retry_after(response: Any) -> float | None:
    """Seconds from retry-after-ms or Retry-After (seconds or an HTTP date)."""
    headers = response.headers
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds()
    except (TypeError, ValueError):
        return None


def strip_fences(text: str) -> str:
    """The JSON inside a ```json fenced block, or the text itself."""
    t = text.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else ""
        if t.rstrip().endswith("```"):
            t = t.rstrip()[:-3]
    return t.strip()


def _validate(model: type[BaseModel], text: str) -> tuple[BaseModel | None, list[str]]:
    try:
        # strict=False: small models write raw newlines inside JSON strings; accept them.
        data = json.loads(strip_fences(text), strict=False)
    except ValueError as exc:
        return None, [f"(root): not JSON ({type(exc).__name__} at line {getattr(exc, 'lineno', '?')})"]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        # Locations and messages only: the offending input may be untrusted feed text.
        return None, [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors(include_input=False)]


def _repair_prompt(errors: list[str]) -> str:
    listed = "\n".join(f"- {e}" for e in errors[:10])
    return (
        "Your previous reply did not match the required JSON schema:\n"
        f"{listed}\n"
        "Reply again with only the corrected JSON object, no prose and no code fences."
    )


def _span_request(span: trace.Span, role: str, route: Route, price: ModelPrice, max_tokens: int, temperature: float, ids: dict) -> None:
    parts = urlsplit(route.base_url)
    span.set_attribute("gen_ai.operation.name", "chat")
    span.set_attribute("gen_ai.system", "openai")
    span.set_attribute("gen_ai.provider.name", price.provider)
    span.set_attribute("gen_ai.request.model", route.model)
    span.set_attribute("gen_ai.request.max_tokens", max_tokens)
    span.set_attribute("gen_ai.request.temperature", temperature)
    if parts.hostname:
        span.set_attribute("server.address", parts.hostname)
    if parts.port:
        span.set_attribute("server.port", parts.port)
    span.set_attribute("selfpub.role", role)
    for k, v in ids.items():
        if v is not None:
            span.set_attribute(f"selfpub.{k}", v)


def _span_result(span: trace.Span, used: Usage, spent: int, outcome: str, error_class: str | None) -> None:
    span.set_attribute("gen_ai.usage.input_tokens", used.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", used.output_tokens)
    span.set_attribute("selfpub.cost_ucr", spent)
    span.set_attribute("selfpub.outcome", outcome)
    if error_class:
        span.set_attribute("error.type", error_class)
        span.set_status(trace.Status(trace.StatusCode.ERROR, error_class))
