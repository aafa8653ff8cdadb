"""Paying LLM endpoints that answer HTTP 402 with x402 requirements, through the official x402 SDK.

    AsyncOpenAI(http_client=httpx2.AsyncClient(transport=PayingTransport(payer)))
        built by daemon/wiring_agents.py (paying_http_client) when [x402.spend] is enabled

    PayingTransport.handle_async_request(request)         an httpx2 transport (the openai SDK's client)
      send as it is --------------------------------> not 402: returned untouched
      402, outside a metered attempt ----------------> returned: nothing is paid outside the meter
      402 -> x402HTTPClient.get_payment_required_response (the SDK decodes the offer)
          the call's outstanding payment still valid? resend it (same nonce: it settles at most once);
              the endpoint now asking other terms: refused (outstanding), never a second payment
          else X402Payer.create(...):
              x402Client (SDK) selects an accept: the first the policy would take
              before-hook: SpendPolicy.approve(offer, cap = the attempt's reservation)
                  refused -> SpendRefused recorded on the attempt, the 402 returned: nothing signed
              ExactEvmScheme / UptoEvmScheme sign through GuardedSigner (approval required)
      resend with PAYMENT-SIGNATURE -------------------> the payment is recorded as sent before it leaves
      answer: PAYMENT-RESPONSE decoded by the SDK -----> settled amount and tx hash recorded
      the meter books what was recorded (agents/llm/paidcall.py)

Schemes: `exact` (EIP-3009 transferWithAuthorization: the price must fit the reservation) and
`upto` (Permit2 through the x402 upto proxy: the authorised maximum must fit the reservation, the
settled amount is booked). The SDK's own spend controls are off: SpendPolicy is the one gate.
The signing key comes from the wallet keystore (daemon/ hands in a LocalAccount); it is never logged.

On chain, `upto` needs Permit2 (0x000000000022D473030F116dDEE9F6B43aC78BA3) and the x402 upto proxy
(0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002). Their runtime bytecode is in no package reachable
offline: not in the x402 SDK (2.25), nor in npm's @x402/evm (2.27.0) or @uniswap/permit2-sdk (1.4.0),
nor on PyPI; so nothing can anvil_setCode them, and the real-peer tests pay with `exact` (EIP-3009 on
CreditToken3009). `upto` is covered by unit tests over the SDK's own types (tests/agents/llm/).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
from x402 import x402Client
from x402.http import x402HTTPClient
from x402.mechanisms.evm.exact import ExactEvmScheme
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.mechanisms.evm.upto import UptoEvmScheme
from x402.schemas import NoMatchingRequirementsError, PaymentCreationContext, PaymentRequirements

from agents.llm import paidcall
from agents.llm.errors import SpendRefused
from agents.llm.paidcall import Payment
from agents.llm.spendpolicy import OUTSTANDING, SCHEME, GuardedSigner, Offer, SpendPolicy, signing_window

log = logging.getLogger(__name__)

EVM_NETWORKS = "eip155:*"


class X402Payer:
    """The SDK's x402 client with the spend policy in front of every signature."""

    def __init__(self, policy: SpendPolicy, account: Any):
        self.policy = policy
        signer = GuardedSigner(EthAccountSigner(account) if hasattr(account, "key") else account)
        self.payer = signer.address.lower()
        self.client = x402Client(payment_requirements_selector=self._select)
        self.client.set_spend_controls(False)  # the SDK's USD caps know nothing of credits: SpendPolicy decides
        schemes = {"exact": ExactEvmScheme, "upto": UptoEvmScheme}
        for name in ("exact", "upto"):  # every EVM offer reaches the policy, which gives the reason
            self.client.register(EVM_NETWORKS, schemes[name](signer))
        self.client.on_before_payment_creation(self._approve)
        self.http = x402HTTPClient(self.client)

    def _select(self, version: int, accepts: list[Any]) -> Any:
        """The first accept the policy would take; else the first (the before-hook then says why not)."""
        paid = paidcall.current()
        cap = paid.cap if paid is not None else 0
        for req in accepts:
            try:
                self.policy.check(Offer.of(req), cap)
            except SpendRefused:
                continue
            return req
        return accepts[0]

    def _approve(self, ctx: PaymentCreationContext) -> None:
        paid = paidcall.current()
        if paid is None:
            raise SpendRefused("x402 payment outside a metered call", reason="disabled")
        paid.policy = self.policy
        approval = self.policy.approve(Offer.of(ctx.selected_requirements), paid.cap)
        paid.approval = approval

    async def create(self, payment_required: Any, paid: paidcall.PaidAttempt) -> Payment:
        """Sign one payment under the policy (SpendRefused when it says no); recorded on the attempt."""
        with signing_window():
            try:
                payload = await self.client.create_payment_payload(payment_required)
            except NoMatchingRequirementsError as exc:  # no EVM exact/upto offer at all
                raise SpendRefused(f"x402 payment refused: no offer this client can pay ({exc})",
                                   reason=SCHEME) from None
        approval, paid.approval = paid.approval, None
        assert approval is not None  # the before-hook ran: the SDK calls it before any scheme signs
        req: PaymentRequirements = payload.accepted
        inner = payload.payload
        if "authorization" in inner:  # EIP-3009
            nonce, deadline = inner["authorization"]["nonce"], int(inner["authorization"]["validBefore"])
        else:  # Permit2
            auth = inner["permit2Authorization"]
            nonce, deadline = str(auth["nonce"]), int(auth["deadline"])
        payment = Payment(
            key=f"x402:{req.network}:{self.payer}:{nonce}", scheme=req.scheme, network=str(req.network),
            payer=self.payer, pay_to=str(req.pay_to).lower(), units=int(req.amount), ucr=approval.ucr,
            valid_before=deadline, approval=approval, payload=payload,
        )
        paid.payments.append(payment)
        return payment


class PayingTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport that pays a 402 with x402, inside a metered attempt, under the spend policy."""

    def __init__(self, payer: X402Payer, transport: httpx2.AsyncBaseTransport | None = None):
        self.payer = payer
        self._transport = transport or httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send; on a 402 inside a metered attempt, pay once under the policy and resend."""
        await request.aread()
        response = await self._transport.handle_async_request(request)
        paid = paidcall.current()
        if response.status_code != 402 or paid is None:
            return response
        await response.aread()
        try:
            body = json.loads(response.content) if response.content else None
        except ValueError:
            body = None
        try:
            required = self.payer.http.get_payment_required_response(response.headers.get, body)
        except (ValueError, TypeError):
            return response  # a 402 without x402 terms: the endpoint's own refusal
        payment = paid.call.reusable()
        try:
            if payment is not None and not _offers(required, payment):
                # The earlier payment may still settle: a second one for other terms could pay twice.
                raise SpendRefused(f"x402 payment refused: this call's payment {payment.key} may still settle "
                                   f"and the endpoint now asks for other terms", reason=OUTSTANDING)
            if payment is not None:
                paid.payments.append(payment)  # the same signed payment again: same key, booked once
            else:
                payment = await self.payer.create(required, paid)
        except SpendRefused as exc:
            paid.refused = exc
            log.info("x402 payment refused", extra={"reason": exc.reason, "agent": paid.agent})
            return response
        headers = dict(request.headers)
        headers.update(self.payer.http.encode_payment_signature_header(payment.payload))
        retry = httpx2.Request(request.method, request.url, headers=headers, content=request.content,
                               extensions=dict(request.extensions))
        payment.sent = True  # from here on someone may hold the signature: booked until proven void
        paid.call.outstanding = payment
        answer = await self._transport.handle_async_request(retry)
        try:
            settled = self.payer.http.get_payment_settle_response(answer.headers.get)
        except (ValueError, TypeError):
            return answer
        if settled.success and settled.transaction:
            units = int(settled.amount) if settled.amount not in (None, "") else payment.units
            payment.settled_units = units
            payment.settled_ucr = self.payer.policy.ucr(units)
            payment.tx_hash = settled.transaction
        return answer

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._transport.aclose()


def _offers(required: Any, payment: Payment) -> bool:
    """Whether the endpoint still asks for what the outstanding payment pays (so resending it fits)."""
    return any(
        str(r.network) == payment.network and r.scheme == payment.scheme and str(r.pay_to).lower() == payment.pay_to
        and int(r.amount) == payment.units
        for r in getattr(required, "accepts", [])
    )
