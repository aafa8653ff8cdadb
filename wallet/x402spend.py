"""Inference paid over x402, reconciled with the chain: settled, pending, or void (and then reversed).

agents/llm/paidcall.py books every payment that left as soon as it left (expenses:compute:<agent>
against assets:wallet, key x402:<network>:<payer>:<nonce>), at its settled amount or, with no
settlement seen, at the most it can cost. The chain decides what became of it, as it does for
settlement payments: only an authorisation the token shows used at wallet.confirmations is final.

    for each x402 payment booked and not reversed (ledger.reads.x402_payments_open):
        EIP-3009 nonce used at head - confirmations     confirmed
        used at head only                               unconfirmed (a reorg may still undo it)
        unused, head's time past booked + max_timeout   void: the authorisation expired unused and
          + VOID_MARGIN_SECONDS                          can never settle -> reversed once
                                                        (kind reversal, key void:<payment key>)
        unused, younger                                 pending (it may still settle)

The spend policy refuses an authorisation valid longer than [x402.spend] max_timeout_seconds, and
the payment is booked after it was signed, so "booked + max_timeout" is past its validBefore.
A Permit2 (upto) payment is left as booked: its nonce lives in Permit2's bitmap, and Permit2 is
not on the chains the tests run (see docs/DESIGN.md); booked at its maximum, it never under-counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ledger.journal import Journal
from ledger.reads import PaidCall, x402_payments_open

VOID_MARGIN_SECONDS = 120  # clock skew between our booking and the chain's block times
AUTHORIZATION_STATE_ABI = [{
    "name": "authorizationState", "type": "function", "stateMutability": "view",
    "inputs": [{"name": "authorizer", "type": "address"}, {"name": "nonce", "type": "bytes32"}],
    "outputs": [{"name": "", "type": "bool"}],
}]
CONFIRMED, UNCONFIRMED, PENDING, VOID = "confirmed", "unconfirmed", "pending", "void"


@dataclass(frozen=True)
class SpendReconcile:
    """What the chain said of every open x402 payment: payment key -> status."""

    statuses: dict[str, str]
    voided_ucr: int = 0

    def count(self, status: str) -> int:
        """How many payments have this status."""
        return sum(1 for s in self.statuses.values() if s == status)


def _eip3009(call: PaidCall, network: str) -> tuple[str, bytes] | None:
    """(payer, nonce) of an EIP-3009 payment on `network`; None for another network or a Permit2 nonce."""
    prefix = f"x402:{network}:"
    if not call.key.startswith(prefix):
        return None
    payer, _, nonce = call.key[len(prefix):].rpartition(":")
    if not nonce.startswith("0x") or len(nonce) != 66:
        return None
    return payer, bytes.fromhex(nonce[2:])


def reconcile_paid_inference(
    journal: Journal, w3: Any, token: str, *, network: str, confirmations: int, max_timeout_seconds: int,  # noqa: ANN401
) -> SpendReconcile:
    """Ask the token about every open x402 payment of `network`; reverse the ones that expired unused."""
    contract = w3.eth.contract(address=w3.to_checksum_address(token), abi=AUTHORIZATION_STATE_ABI)
    head = w3.eth.get_block("latest")
    head_time = datetime.fromtimestamp(int(head["timestamp"]), tz=timezone.utc)
    deep = max(int(head["number"]) - confirmations, 0)
    statuses: dict[str, str] = {}
    voided = 0
    for call in x402_payments_open(journal):
        terms = _eip3009(call, network)
        if terms is None:
            continue
        payer, nonce = terms
        state = contract.functions.authorizationState(w3.to_checksum_address(payer), nonce)
        if state.call(block_identifier=deep):
            statuses[call.key] = CONFIRMED
        elif state.call(block_identifier=int(head["number"])):
            statuses[call.key] = UNCONFIRMED
        elif head_time > call.time + timedelta(seconds=max_timeout_seconds + VOID_MARGIN_SECONDS):
            journal.reverse(call.txn_id, idempotency_key=f"void:{call.key}",
                            memo=f"x402 payment {call.key} expired unused on chain: void")
            statuses[call.key] = VOID
            voided += call.amount
        else:
            statuses[call.key] = PENDING
    return SpendReconcile(statuses, voided)
