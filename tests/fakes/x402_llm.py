"""A paywall in front of FakeOpenAI for unit tests: the x402 SDK's wire format, a signature really checked.

    PaidFake(fake, offer...).transport()     an httpx2 MockTransport:
        no PAYMENT-SIGNATURE   -> 402, PAYMENT-REQUIRED = the SDK's encoding of the accepts
        a payment              -> decoded by the SDK; an EIP-3009 signature is recovered with
                                  eth_account against the token's EIP-712 domain and must be the
                                  payer's; a nonce seen settled before -> 402 (as the token would)
        paid                   -> FakeOpenAI's answer + PAYMENT-RESPONSE (the SDK's SettleResponse)

`settle=False` answers without settling (a server that served and never settled); `fail_after_pay`
raises a read timeout after recording the payment (the answer is lost, the payment is not);
`script` picks, per paid request, one of PAID_OUTCOMES (the exactly-once property walks them).
The real chain, token and facilitator are in the real-peer tests; this checks the client layer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import httpx2
from eth_account import Account
from x402.http.utils import (
    decode_payment_signature_header,
    encode_payment_required_header,
    encode_payment_response_header,
)
from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
from x402.mechanisms.evm.types import ExactEIP3009Payload
from x402.schemas import PaymentRequired, PaymentRequirements, ResourceInfo, SettleResponse

from tests.fakes.openai import FakeOpenAI

CHAIN_ID = 31337
NETWORK = f"eip155:{CHAIN_ID}"
TOKEN = "0x" + "c0" * 20
TOKEN_NAME, TOKEN_VERSION = "Credit", "1"
PAYEE = "0x" + "be" * 20
PAID_OUTCOMES = ("ok", "timeout", "lost", "error")  # settled+answered, settled+lost, never arrived, 5xx


def requirements(amount: int, *, scheme: str = "exact", network: str = NETWORK, asset: str = TOKEN,
                 pay_to: str = PAYEE, timeout: int = 300) -> PaymentRequirements:
    """One accept of a 402, in the SDK's type."""
    extra: dict[str, Any] = {"name": TOKEN_NAME, "version": TOKEN_VERSION}
    if scheme == "upto":
        extra["facilitatorAddress"] = "0x" + "fa" * 20
    return PaymentRequirements(scheme=scheme, network=network, asset=asset, amount=str(amount), pay_to=pay_to,
                               max_timeout_seconds=timeout, extra=extra)


@dataclass
class PaidFake:
    """FakeOpenAI behind an x402 paywall (MockTransport mode)."""

    fake: FakeOpenAI
    accepts: list[PaymentRequirements]
    settle: bool = True
    fail_after_pay: int = 0  # this many paid requests time out after the payment is taken
    script: list[str] = field(default_factory=list)  # per paid request, first to last (see PAID_OUTCOMES)
    paid: list[dict[str, Any]] = field(default_factory=list)  # every payment settled: payer, to, value, nonce
    seen: list[dict[str, Any]] = field(default_factory=list)  # every payment presented
    used_nonces: set[str] = field(default_factory=set)

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        header = request.headers.get("PAYMENT-SIGNATURE")
        if not header:
            return self._required()
        payload = decode_payment_signature_header(header)
        accepted = payload.accepted
        inner = payload.payload
        if accepted.scheme != "exact":  # upto: recorded as presented, never settled here
            permit = inner["permit2Authorization"]
            self.seen.append({"scheme": accepted.scheme, "to": permit["witness"]["to"].lower(),
                              "value": int(permit["permitted"]["amount"]), "nonce": str(permit["nonce"])})
            return self._required("only exact is settled by this fake")
        exact = ExactEIP3009Payload.from_dict(inner)
        auth = exact.authorization
        digest = hash_eip3009_authorization(auth, CHAIN_ID, TOKEN, TOKEN_NAME, TOKEN_VERSION)
        signer = Account._recover_hash(digest, signature=bytes.fromhex((exact.signature or "").removeprefix("0x")))
        record = {"payer": signer.lower(), "from": auth.from_address.lower(), "to": auth.to.lower(),
                  "value": int(auth.value), "nonce": auth.nonce}
        self.seen.append(record)
        if signer.lower() != auth.from_address.lower() or auth.to.lower() != accepted.pay_to.lower():
            return self._required("invalid signature")
        if auth.nonce in self.used_nonces:
            return self._required("authorization already used")
        step = self.script.pop(0) if self.script else None
        if step == "lost":  # the request died on the way: nothing settled, nothing answered
            raise httpx2.RemoteProtocolError("fake: connection reset", request=request)
        if step == "error":  # the model failed: the middleware settles nothing on a 5xx
            return httpx2.Response(500, content=b'{"error": {"message": "boom"}}',
                                   headers={"content-type": "application/json"})
        if step == "timeout":  # settled, then the answer was lost
            self.used_nonces.add(auth.nonce)
            self.paid.append(record)
            raise httpx2.ReadTimeout("fake: paid, then timed out", request=request)
        if self.settle:
            self.used_nonces.add(auth.nonce)
            self.paid.append(record)
        if self.fail_after_pay:
            self.fail_after_pay -= 1
            raise httpx2.ReadTimeout("fake: paid, then timed out", request=request)
        answer = self.fake.handler(request)
        if not self.settle:
            return answer
        tx = "0x" + hashlib.sha256(auth.nonce.encode()).hexdigest()
        settled = SettleResponse(success=True, transaction=tx, network=accepted.network, payer=auth.from_address,
                                 amount=str(auth.value))
        answer.headers["PAYMENT-RESPONSE"] = encode_payment_response_header(settled)
        return answer

    def _required(self, error: str | None = None) -> httpx2.Response:
        required = PaymentRequired(accepts=self.accepts, resource=ResourceInfo(url="http://paid-llm.test/v1"),
                                   error=error)
        return httpx2.Response(402, headers={"PAYMENT-REQUIRED": encode_payment_required_header(required),
                                             "content-type": "application/json"}, content=b"{}")

    def transport(self) -> httpx2.MockTransport:
        """A MockTransport answering like this paywall."""
        return httpx2.MockTransport(self.handler)
