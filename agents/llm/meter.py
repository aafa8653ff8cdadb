"""The meter: every request reserved before it leaves, marked sent, and paid for by what came back.

One attempt, top to bottom (Meter.send):

    estimate   prompt tokens (upper bound) + max_tokens at the model's price = the worst case
    plan       role caps per cycle (calls, tokens) and the budget's headroom may lower max_tokens;
               what cannot fit is refused (BudgetExceeded, logged as a refused row)
    reserve    Budget.reserve(worst case)
    mark sent  Budget.mark_sent(hold), before the provider writes a byte: if we die from here on,
               the hold's expiry books it at the worst case instead of freeing it
    send       Provider.send(request) -> Reply(outcome, ...)
    settle     by outcome:  answered   commit(usage priced)       no usage: book the worst case
                            rejected   commit(usage priced)       no usage: release
                            ambiguous  book the worst case        (a later commit corrects it)
                            not_sent   release
               cancelled or crashed mid-send: book the worst case
               paid over x402 (the endpoint answered 402; agents/llm/paidcall.py): the reservation
               was the payment's cap; book the payment (settled, else its authorised amount)
               against the wallet once per payment key, or release when nothing was signed or
               nothing left; a policy refusal is raised after the log row (SpendRefused)
    log        one llm_call row and one OpenTelemetry span per attempt

Settling is retried (COMMIT_ATTEMPTS, doubling backoff) when the database fails transiently (SQLite
busy/locked, a PostgreSQL connection dropped: OperationalError, or any DBAPIError that invalidated its
connection). If it still fails, the hold is never released by us: it stays open with its sent mark
and is retried at the start of the next call; if the process dies first, its expiry books the worst
case. The answer is returned either way (it was paid for: the hold already counts against the money).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from sqlalchemy.exc import DBAPIError, OperationalError

from agents.llm import paidcall
from agents.llm.calllog import AMBIGUOUS as LOG_AMBIGUOUS
from agents.llm.calllog import ERROR, INVALID, OK, REFUSED, CallLog, CallRecord
from agents.llm.pricing import cost, estimate_prompt_tokens, max_output_within
from agents.llm.provider import AMBIGUOUS, ANSWERED, NOT_SENT, REJECTED, Provider, Reply, Request, public_url
from agents.protocol import Usage
from config.settings import AgentSettings, ModelPrice
from ledger.budget import Budget, BudgetExceeded, Hold

log = logging.getLogger(__name__)

MIN_MAX_TOKENS = 16  # below this a reply is useless: refuse instead of shrinking further
COMMIT_ATTEMPTS = 5  # tries of one ledger write after a billed reply before it is left to the hold
COMMIT_BACKOFF_SECONDS = 0.05  # doubled per try: under a second in all
MAX_PENDING = 256  # settlements kept for a retry at the next call (their holds cover them meanwhile)
# Role counters are kept for this many most recent cycles only (a daemon runs one cycle at a time);
# an older cycle asked about again reloads its totals from the call log, so the caps stay exact.
ROLE_USAGE_CYCLES = 4


@dataclass(frozen=True)
class Route:
    """One place a role's call may go: an endpoint and the model to ask there."""

    base_url: str
    model: str


@dataclass(frozen=True)
class Metered:
    """One sent attempt, paid for: the provider's reply and what the ledger booked for it."""

    reply: Reply
    usage: Usage  # reported usage (zeros when none)
    cost: int  # ucr booked (or, when `booked` is False, to be booked)
    reserved: int
    max_tokens: int
    booked: bool = True  # False: the ledger write failed; the hold stays and covers it


def transient_db_error(exc: BaseException) -> bool:
    """A database failure worth retrying: busy/locked, or a connection that went away."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class Meter:
    """Reserve, mark sent, send through a provider, settle with retries, log. One per MeteredLLM."""

    def __init__(
        self,
        budget: Budget,
        *,
        calllog: CallLog | None = None,
        tracer: trace.Tracer | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        min_max_tokens: int = MIN_MAX_TOKENS,
        commit_attempts: int = COMMIT_ATTEMPTS,
        commit_backoff: float = COMMIT_BACKOFF_SECONDS,
    ):
        self.budget = budget
        self.calllog = calllog
        self.tracer = tracer or trace.get_tracer("selfpub.agents.llm")
        self._sleep = sleep
        self.min_max_tokens = min_max_tokens
        self.commit_attempts = commit_attempts
        self.commit_backoff = commit_backoff
        self.role_usage: dict[str, dict[str, list[int]]] = {}  # cycle -> role -> [calls, tokens], recent cycles
        self.pending: list[tuple[str, Callable[[], Any]]] = []  # settlements the database refused

    # -- caps ------------------------------------------------------------------------

    def usage_of(self, role: str, cycle_id: str) -> list[int]:
        """The [calls, tokens] a role used in a cycle (loaded from the call log after a restart)."""
        roles = self.role_usage.get(cycle_id)
        if roles is None:
            roles = self.role_usage[cycle_id] = {}
            while len(self.role_usage) > ROLE_USAGE_CYCLES:  # bounded: one entry per cycle would grow forever
                del self.role_usage[next(iter(self.role_usage))]
        if role not in roles:
            t = self.calllog.totals(cycle_id=cycle_id, role=role) if self.calllog else None
            roles[role] = [t.calls, t.tokens] if t else [0, 0]
        return roles[role]

    def _refuse(self, exc: BudgetExceeded, role: str, route: Route, ids: dict, n: int) -> BudgetExceeded:
        self.record(CallRecord(
            role=role, model=route.model, endpoint=public_url(route.base_url), outcome=REFUSED,
            error_class=f"BudgetExceeded:{exc.limit}", attempt=n, **ids,
        ))
        log.info("llm call refused", extra={"role": role, "model": route.model, "limit": exc.limit, **ids})
        return exc

    def plan(
        self, role: str, cfg: AgentSettings, route: Route, price: ModelPrice, prompt: int,
        max_tokens: int | None, ids: dict, n: int,
    ) -> tuple[int, int]:
        """Apply the role caps and the budget headroom: returns (max_tokens, worst-case cost)."""
        mt = max_tokens or cfg.max_tokens
        floor = min(self.min_max_tokens, mt)
        cycle_id = ids["cycle_id"]
        if cycle_id is not None:
            calls, tokens = self.usage_of(role, cycle_id)
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

    # -- one attempt -----------------------------------------------------------------------

    async def send(
        self, *, role: str, cfg: AgentSettings, route: Route, price: ModelPrice, provider: Provider,
        messages: list[dict[str, str]], schema_text: str = "", response_format: dict | None = None,
        seed: int | None = None, max_tokens: int | None = None, ids: dict, n: int,
        check: Callable[[str], bool] | None = None,
    ) -> Metered:
        """Reserve, mark sent, send once, settle by the reply's outcome, log; BudgetExceeded when refused."""
        await self.flush()
        prompt = estimate_prompt_tokens(messages, schema_text)
        mt, worst = self.plan(role, cfg, route, price, prompt, max_tokens, ids, n)
        try:
            hold = self.budget.reserve(role, worst, model=route.model, provider=price.provider,
                                       cycle_id=ids["cycle_id"], task_id=ids["task_id"])
        except BudgetExceeded as exc:
            raise self._refuse(exc, role, route, ids, n) from None
        counters = self.usage_of(role, ids["cycle_id"]) if ids["cycle_id"] is not None else None
        if counters is not None:
            counters[0] += 1
            counters[1] += prompt + mt  # pending until the reported usage replaces it
        try:
            self.budget.mark_sent(hold)
        except BaseException:
            # Nothing left: give the hold back (if even that fails, it expires unsent: freed).
            await self._settle("release", lambda: self.budget.release(hold), keep=False)
            if counters is not None:
                counters[1] -= prompt + mt
            raise
        request = Request(route.model, messages, mt, cfg.temperature, cfg.timeout_seconds, seed, response_format)
        started = time.perf_counter()
        memo = f"{role} {route.model}"
        with self.tracer.start_as_current_span(f"chat {route.model}", kind=trace.SpanKind.CLIENT) as span:
            _span_request(span, role, route, price, mt, cfg.temperature, ids)
            with paidcall.attempt(role, worst) as paid:  # the reservation caps an x402 payment
                try:
                    reply = await provider.send(request)
                except BaseException as exc:  # cancelled, or a bug below us: the request may have left
                    reply = Reply(AMBIGUOUS, error_class=type(exc).__name__)
                    raise
                finally:
                    if paid.refused is not None:  # the call log names the policy's reason
                        reply = dataclasses.replace(reply, error_class=f"SpendRefused:{paid.refused.reason}")
                    if paid.payments or paid.refused is not None:
                        spent, used, booked = await self._pay_x402(hold, reply, paid, memo)
                    else:
                        spent, used, booked = await self._pay(hold, reply, price, worst, memo)
                    if counters is not None and reply.outcome != AMBIGUOUS and not (
                            reply.outcome == ANSWERED and reply.usage is None):
                        counters[1] += used.total - (prompt + mt)
                    self._log(role, route, hold, reply, used, spent, worst, started, span, ids, n, check)
        if paid.refused is not None:
            refused = paid.refused
            refused.role, refused.model, refused.task_id = role, route.model, ids["task_id"]
            raise refused
        return Metered(reply, used, spent, worst, mt, booked)

    async def _pay_x402(self, hold: Hold, reply: Reply, paid: paidcall.PaidAttempt, memo: str) -> tuple[int, Usage, bool]:
        """Settle a hold whose request met an x402 offer: book what was paid, or release (agents/llm/paidcall.py)."""
        used = reply.usage or Usage()
        spent: list[int | None] = [None]

        def write() -> None:
            spent[0] = paidcall.book(self.budget, hold, paid, memo)
            if spent[0] is None:  # refused, or signed and never sent: nobody can hold a signature
                self.budget.release(hold)

        booked = await self._settle(f"x402 {hold.id}", write)
        return spent[0] or 0, used, booked

    async def _pay(self, hold: Hold, reply: Reply, price: ModelPrice, worst: int, memo: str) -> tuple[int, Usage, bool]:
        """Settle the hold by the outcome; returns (cost, usage, whether the ledger took it)."""
        usage = reply.usage
        if usage is not None and reply.outcome in (ANSWERED, REJECTED):
            spent = cost(price, usage.input_tokens, usage.output_tokens)
            what = memo if reply.outcome == ANSWERED else f"{memo} failed ({reply.status})"
            booked = await self._settle(f"commit {hold.id}", lambda: self.budget.commit(hold, spent, usage, memo=what))
            return spent, usage, booked
        if reply.outcome in (NOT_SENT, REJECTED):
            booked = await self._settle(f"release {hold.id}", lambda: self.budget.release(hold))
            return 0, Usage(), booked
        # Ambiguous, or answered without a usage report: it was (or may have been) served; we cannot
        # know for how much, so the held worst case is what it cost until a usage report says otherwise.
        why = "no usage reported" if reply.outcome == ANSWERED else f"no answer ({reply.error_class})"
        booked = await self._settle(
            f"book {hold.id}", lambda: self.budget.book_worst_case(hold, memo=f"{memo}: {why}, worst case booked"))
        return worst, Usage(), booked

    async def _settle(self, what: str, write: Callable[[], Any], *, keep: bool = True) -> bool:
        """Run one ledger write, retrying transient database errors; keep it for later if it still fails."""
        delay = self.commit_backoff
        for attempt in range(1, self.commit_attempts + 1):
            try:
                write()
                return True
            except Exception as exc:
                if not transient_db_error(exc):
                    raise
                log.warning("ledger write failed, retrying",
                            extra={"what": what, "attempt": attempt, "error_class": type(exc).__name__})
                if attempt < self.commit_attempts:
                    await asyncio.shield(self._sleep(delay))
                    delay *= 2
        log.error("ledger write kept failing: the hold stays open and covers it",
                  extra={"what": what, "attempts": self.commit_attempts})
        if keep:
            self.pending.append((what, write))
            del self.pending[:-MAX_PENDING]
        return False

    async def flush(self) -> None:
        """Retry settlements the database refused earlier (once each; they stay if it still refuses)."""
        if not self.pending:
            return
        left = []
        for what, write in self.pending:
            try:
                write()
            except Exception as exc:
                if not transient_db_error(exc):
                    raise
                left.append((what, write))
        self.pending = left

    # -- the call log ---------------------------------------------------------------------

    def _log(
        self, role: str, route: Route, hold: Hold, reply: Reply, used: Usage, spent: int, worst: int,
        started: float, span: trace.Span, ids: dict, n: int, check: Callable[[str], bool] | None,
    ) -> None:
        outcome = {ANSWERED: OK, AMBIGUOUS: LOG_AMBIGUOUS}.get(reply.outcome, ERROR)
        if outcome == OK and check is not None and not check(reply.text):
            outcome = INVALID
        error_class = None if reply.outcome == ANSWERED else reply.error_class
        latency = int((time.perf_counter() - started) * 1000)
        _span_result(span, used, spent, outcome, error_class)
        self.record(CallRecord(
            role=role, model=route.model, endpoint=public_url(route.base_url), outcome=outcome,
            input_tokens=used.input_tokens, output_tokens=used.output_tokens, cost=spent, reserved=worst,
            latency_ms=latency, error_class=error_class,
            status_code=None if reply.outcome == ANSWERED else reply.status, attempt=n,
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

    def record(self, rec: CallRecord) -> None:
        """Append a call-log row; the log is telemetry: a database hiccup here never loses an answer."""
        if self.calllog is None:
            return
        try:
            self.calllog.record(rec)
        except Exception as exc:
            if not transient_db_error(exc):
                raise
            log.warning("llm call log row lost", extra={"error_class": type(exc).__name__, "role": rec.role})


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
