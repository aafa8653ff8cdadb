"""The site's paid paths behind the x402 SDK's payment middleware, and the record of every payment it settles.

    paywall = Paywall(server, terms, PaidReads(engine), attribute=content_lookup)
    app = build_site_app(content, settings, middleware=paywall.middleware())

    request --> PaidPathGuard (ours, outermost)          which kind and slug; watches facilitator outages
            --> the SDK's payment middleware     no payment: 402 with the requirements
                                                 a payment: verify -> the page -> settle -> 200 + PAYMENT-RESPONSE
                                                 the page answered >= 400: nothing settled
            --> the site

Around the SDK's settle call (resource server hooks):
    before  claim the payment id in wallet_paid_read; a payment id seen before aborts (402, nothing settled)
    after   the transaction hash is recorded; the tip scanner books it as income:reads:<kind> at
            wallet.confirmations, attributed to the post and task `attribute(kind, slug)` names
    failure a refused settle marks the read failed; an outage leaves it settling (the transaction may
            have been sent: the scanner matches it by its nonce if it lands)

A facilitator or chain node that does not answer (FacilitatorUnavailable, raised by payments/x402.py's
clients) is a 503 with Retry-After whatever the SDK made of it: the reader may retry, nothing was served.

A reader who paid and got that 503 (the transfer was sent before the facilitator failed) is served when the same
payment comes again: the PaidPathGuard finds its record, unserved and for this page, checks the payer's signature
and that its transfer landed (the record says settled, else the chain: `landed`), marks it served once and lets
the request past the SDK's middleware: nothing verified or settled again, nothing booked again (the scanner books
the one transfer). A payment served once is a replay: the SDK refuses it (402).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from payments.x402 import (
    DEFAULT_RETRY_AFTER,
    PATTERNS,
    FacilitatorUnavailable,
    Terms,
    TermsError,
    chain_id_of,
    payment_signed,
    watch_outages,
)
from wallet.reads import Claim, PaidReads, payment_id

log = logging.getLogger(__name__)

Attribute = Callable[[str, str], tuple[str | None, str | None]]  # (kind, slug) -> (post id, task id)
_KIND = "selfpub.x402.kind"  # ASGI scope keys the PaidPathGuard sets for the hooks
_SLUG = "selfpub.x402.slug"
_REDELIVER = "selfpub.x402.redeliver"  # set on a paid-but-unserved read presented again: the SDK is skipped
Landed = Callable[[str, str, int], "str | None"]  # (payer, nonce, units) -> the transfer's tx hash, None if not on chain


def _regex(pattern: str) -> re.Pattern[str]:
    """An x402 route pattern ("/a/[slug].md") as a regex capturing the slug."""
    return re.compile("^" + re.escape(pattern).replace(r"\[slug\]", r"(?P<slug>[^/]+)") + "$")


def _no_attribution(kind: str, slug: str) -> tuple[None, None]:  # noqa: ARG001
    return None, None


class Paywall:
    """Paid reads for an ASGI site: the SDK's middleware with our outage answer and payment record."""

    def __init__(self, server: Any, terms: Terms, reads: PaidReads, *, attribute: Attribute = _no_attribution,  # noqa: ANN401
                 patterns: Mapping[str, str] = PATTERNS, retry_after: int = DEFAULT_RETRY_AFTER,
                 landed: Landed | None = None):
        self.server = server
        self.landed = landed
        self.terms = terms
        self.reads = reads
        self.attribute = attribute
        self.patterns = dict(patterns)
        self.retry_after = retry_after
        self._paths = [(kind, _regex(p)) for kind, p in self.patterns.items()]
        server.on_before_settle(self._before_settle)
        server.on_after_settle(self._after_settle)
        server.on_settle_failure(self._settle_failure)

    def classify(self, path: str) -> tuple[str, str] | None:
        """(kind, slug) of a paid path, None for any other."""
        for kind, regex in self._paths:
            found = regex.match(path)
            if found:
                return kind, found.group("slug")
        return None

    def middleware(self) -> list:
        """Starlette middleware, outermost first: the PaidPathGuard, then the SDK's payment middleware."""
        from starlette.middleware import Middleware
        from starlette.middleware.base import BaseHTTPMiddleware
        from x402.http import RouteConfigurationError, x402HTTPResourceServer
        from x402.http.middleware.fastapi import payment_middleware
        from x402.schemas import FacilitatorCapabilityError

        routes = self.terms.routes(self.patterns)
        try:  # the SDK would exit the process on a misconfiguration: refuse it here with the reason instead
            x402HTTPResourceServer(self.server, routes).initialize()
        except FacilitatorUnavailable:
            log.warning("x402 facilitator unavailable at start; paid paths answer 503 until it is back")
        except (RouteConfigurationError, FacilitatorCapabilityError) as exc:
            raise TermsError(f"the facilitator cannot settle these terms ({self.terms.network}, "
                             f"{self.terms.asset}): {exc}") from None
        # Started while the facilitator is down, the SDK initializes on the first paid request again.
        paid = payment_middleware(routes, self.server, sync_facilitator_on_start=True)

        async def dispatch(request: Any, call_next: Any) -> Any:  # noqa: ANN401
            if request.scope.get(_REDELIVER):
                return await call_next(request)  # paid and landed before: serve, never verify or settle again
            return await paid(request, call_next)

        return [Middleware(PaidPathGuard, paywall=self), Middleware(BaseHTTPMiddleware, dispatch=dispatch)]

    async def redeliverable(self, scope: dict, kind: str, slug: str) -> bool:
        """Whether this request carries a payment for this page that was paid and never served (then marked served)."""
        from x402.http.utils import decode_payment_signature_header

        header = _header(scope, b"payment-signature") or _header(scope, b"x-payment")
        if header is None:
            return False
        try:
            payload = decode_payment_signature_header(header)
            payer, nonce = payload.payload["authorization"]["from"], payload.payload["authorization"]["nonce"]
            value = int(payload.payload["authorization"]["value"])
        except Exception:  # noqa: BLE001 - not a payment we can read: the SDK answers it
            return False
        pid = payment_id(self.terms.network, self.terms.asset, payer, nonce)
        row = await asyncio.to_thread(self.reads.get, pid)
        if (row is None or row["served_at"] is not None or (row["kind"], row["slug"]) != (kind, slug)
                or value != int(row["units"]) or not payment_signed(payload, self.terms)):
            return False
        if row["status"] != "settled" or not row["tx_hash"]:
            tx = await self._landed(payer, nonce, value)
            if tx is None:
                return False
            await asyncio.to_thread(self.reads.landed, pid, tx)
        if not await asyncio.to_thread(self.reads.serve_once, pid):
            return False
        log.info("x402 read paid before and not served: served now, not settled again", extra={"payment_id": pid})
        return True

    async def _landed(self, payer: str, nonce: str, units: int) -> str | None:
        if self.landed is None:
            return None
        try:
            return await asyncio.to_thread(self.landed, payer, nonce, units)
        except Exception as exc:  # noqa: BLE001 - the node did not answer: not proven, the SDK answers as before
            log.warning("x402 cannot look for a paid read's transfer", extra={"reason": f"{type(exc).__name__}"})
            return None

    # -- the record, around the SDK's settle call -------------------------------------------------

    def _payment(self, ctx: Any) -> tuple[str, str, str]:  # noqa: ANN401
        auth = ctx.payment_payload.payload["authorization"]
        payer, nonce = auth["from"], auth["nonce"]
        return payment_id(str(ctx.requirements.network), ctx.requirements.asset, payer, nonce), payer, nonce

    async def _before_settle(self, ctx: Any) -> Any:  # noqa: ANN401
        from x402 import AbortResult

        scope = _current_scope()
        if scope is None or _KIND not in scope:
            return AbortResult(reason="not a paid read of this site")
        kind, slug = scope[_KIND], scope[_SLUG]
        pid, payer, nonce = self._payment(ctx)
        post_id, task_id = await asyncio.to_thread(self.attribute, kind, slug)
        claim = Claim(pid, chain_id_of(str(ctx.requirements.network)), ctx.requirements.asset, payer, nonce, kind, slug,
                      int(ctx.requirements.amount), self.terms.prices[kind], post_id, task_id)
        if not await asyncio.to_thread(self.reads.claim, claim):
            log.warning("x402 payment id seen before: not settled again", extra={"payment_id": pid})
            return AbortResult(reason="this payment was presented before")
        return None

    async def _after_settle(self, ctx: Any) -> None:  # noqa: ANN401
        pid, _, _ = self._payment(ctx)
        await asyncio.to_thread(lambda: self.reads.settled(pid, ctx.result.transaction, served=True))
        log.info("x402 read settled", extra={"payment_id": pid, "tx_hash": ctx.result.transaction})

    async def _settle_failure(self, ctx: Any) -> None:  # noqa: ANN401
        if isinstance(ctx.error, FacilitatorUnavailable):
            return  # the transaction may have been sent: the read stays settling, the scanner can still match it
        pid, _, _ = self._payment(ctx)
        await asyncio.to_thread(self.reads.failed, pid, str(ctx.error))


# The ASGI scope of the request being served (set by the PaidPathGuard; the SDK's hooks get no request).
_SCOPE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("x402_scope", default=None)


def _current_scope() -> dict | None:
    return _SCOPE.get()


def _header(scope: dict, name: bytes) -> str | None:
    """The first value of a request header (lower-case `name`) in an ASGI scope."""
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class PaidPathGuard:
    """Outermost ASGI layer: marks a paid request's kind and slug, and answers 503 when the facilitator was down."""

    def __init__(self, app: Any, paywall: Paywall):  # noqa: ANN401
        self.app = app
        self.paywall = paywall

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:  # noqa: ANN401
        if scope["type"] != "http" or (found := self.paywall.classify(scope["path"])) is None:
            await self.app(scope, receive, send)
            return
        scope = {**scope, _KIND: found[0], _SLUG: found[1]}
        if await self.paywall.redeliverable(scope, *found):
            await self.app({**scope, _REDELIVER: True}, receive, send)
            return
        _SCOPE.set(scope)
        outages = watch_outages()
        replaced = False

        async def guarded(message: dict) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and outages:
                replaced = True
                await self._unavailable(send)
                return
            if not replaced:
                await send(message)

        try:
            await self.app(scope, receive, guarded)
        except FacilitatorUnavailable:
            if replaced:
                raise
            await self._unavailable(send)

    async def _unavailable(self, send: Any) -> None:  # noqa: ANN401
        body = json.dumps({"error": "payment facilitator unavailable, retry later"}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.paywall.retry_after).encode()), (b"cache-control", b"no-store"),
        ]})
        await send({"type": "http.response.body", "body": body})
