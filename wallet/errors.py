"""The wallet's errors, classified by what the caller should do.

Each error's `retryable` (read by the daemon's job policy): True = again at the next run,
False = permanent (recorded, skipped), None = the daemon stops and is restarted.

    WalletError                retryable None
     +-- RpcUnavailable        True: the node is down, refused, timed out or could not answer: go on from the ledger, retry later
     |    +-- RpcErrorReply    the node answered a JSON-RPC error (.code): "header not found", -32000 server errors...
     |         +-- RpcLimited  -32005 "limit exceeded" (EIP-1474): rate limited, or a query too large
     +-- ChainMismatch         None: the node reports another chain id than configured: refuse to run
     +-- PaymentRefused        False: a settlement was not (yet) made; .reason is allowlist|daily_cap|pending|no_payee|
     |    |                    no_signer|insufficient_funds|would_revert|...
     |    +-- InsufficientGas  reason insufficient_gas: the sender has too little native coin for the gas;
     |    |                    settlement pauses until it is funded
     |    +-- TransactionRejected  reason rejected: the node refused a signed transaction (nonce too low,
     |                         already known, replacement underpriced); recovery decides from chain state
     +-- KeystoreError         None: the keystore is missing, unreadable, or the password is wrong
     +-- NotOnChain            None: (ledger mode) a chain operation was asked of a ledger-only wallet

So the daemon retries RpcUnavailable (and its subclasses) at the job's next
run and records PaymentRefused (and its subclasses) as a failed run; neither
stops the daemon. No error carries a private key, a password or
a raw signed transaction.
"""

from __future__ import annotations

MAX_DETAIL = 200  # characters of a node's error message kept (it is the node's text, not ours)


class WalletError(Exception):
    """Base of every wallet error."""

    retryable: bool | None = None


class RpcUnavailable(WalletError):
    """The JSON-RPC node could not be reached or did not answer in time."""

    retryable = True

    def __init__(self, operation: str, cause: str):
        self.operation = operation
        self.cause = cause
        super().__init__(f"chain node unavailable during {operation}: {cause}")


class RpcErrorReply(RpcUnavailable):
    """The node answered with a JSON-RPC error object instead of a result: try again later."""

    def __init__(self, operation: str, code: int | None, message: str):
        self.code = code
        self.node_message = message[:MAX_DETAIL]
        super().__init__(operation, f"JSON-RPC error {code}: {self.node_message}")


class RpcLimited(RpcErrorReply):
    """JSON-RPC -32005 (EIP-1474 "limit exceeded"): rate limited or the query is too large."""


class ChainMismatch(WalletError):
    """The node serves another chain than the one configured."""

    def __init__(self, expected: int, actual: int):
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"the node reports chain id {actual}, but wallet.chain_id is {expected}; "
            "point wallet.rpc_url at the right network or fix wallet.chain_id"
        )


class PaymentRefused(WalletError):
    """A settlement payment was refused or is held back; nothing new was sent."""

    retryable = False

    def __init__(self, reason: str, detail: str, provider: str | None = None):
        self.reason = reason
        self.provider = provider
        super().__init__(f"payment refused ({reason}){f' to {provider}' if provider else ''}: {detail}")


class InsufficientGas(PaymentRefused):
    """The sender cannot pay the gas of a payment: settlement pauses until it holds more native coin."""

    def __init__(self, have_wei: int, need_wei: int, sender: str, provider: str | None = None):
        self.have_wei = have_wei
        self.need_wei = need_wei
        super().__init__(
            "insufficient_gas",
            f"{sender} holds {have_wei} wei of the chain's native coin; the payment may need up to {need_wei} wei "
            "for gas. Send native coin to that address; settlement resumes at its next run",
            provider,
        )


class TransactionRejected(PaymentRefused):
    """The node answered a signed payment with a JSON-RPC error; chain state, not the message, decides what follows."""

    def __init__(self, code: int | None, message: str, provider: str | None = None):
        self.code = code
        self.node_message = message[:MAX_DETAIL]
        super().__init__("rejected", f"the node refused the transaction (JSON-RPC {code}: {self.node_message})", provider)


class KeystoreError(WalletError):
    """The keystore cannot be created or opened (never says more than the path)."""


class NotOnChain(WalletError):
    """A chain operation asked of the ledger-only wallet."""
