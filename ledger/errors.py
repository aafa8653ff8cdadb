"""The ledger's base errors (the whole tree, with each error's `retryable`, is drawn in ledger.journal).

Here, not in ledger.journal, so ledger.accounts can refuse a bad name without importing the journal.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every ledger error."""

    retryable: bool | None = None


class UnbalancedTransaction(LedgerError):
    """A transaction whose postings do not sum to zero per commodity."""

    def __init__(self, sums: dict[str, int], idempotency_key: str):
        self.sums = sums
        self.idempotency_key = idempotency_key
        super().__init__(f"transaction {idempotency_key!r} does not balance: {sums}")


class InvalidPosting(LedgerError):
    """A posting that is not an integer amount on a well-formed account."""
