"""The wallet's errors, classified by what the caller should do.

    WalletError
     +-- RpcUnavailable      the node is down, refused or timed out: go on from the ledger, retry later
     +-- ChainMismatch       the node reports another chain id than configured: refuse to run
     +-- PaymentRefused      a settlement was not sent; .reason is allowlist|per_tx_cap|daily_cap|pending|no_payee
     +-- KeystoreError       the keystore is missing, unreadable, or the password is wrong
     +-- NotOnChain          (ledger mode) a chain operation was asked of a ledger-only wallet

No error carries a private key, a password or a raw signed transaction.
"""

from __future__ import annotations


class WalletError(Exception):
    """Base of every wallet error."""


class RpcUnavailable(WalletError):
    """The JSON-RPC node could not be reached or did not answer in time."""

    def __init__(self, operation: str, cause: str):
        self.operation = operation
        self.cause = cause
        super().__init__(f"chain node unavailable during {operation}: {cause}")


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
    """A settlement payment was refused before anything was sent."""

    def __init__(self, reason: str, detail: str, provider: str | None = None):
        self.reason = reason
        self.provider = provider
        super().__init__(f"payment refused ({reason}){f' to {provider}' if provider else ''}: {detail}")


class KeystoreError(WalletError):
    """The keystore cannot be created or opened (never says more than the path)."""


class NotOnChain(WalletError):
    """A chain operation asked of the ledger-only wallet."""
