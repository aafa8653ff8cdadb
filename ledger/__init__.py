"""Money: double-entry journal, budget reservations and pause state, reports."""

from ledger.accounts import (
    OPENING,
    RECEIVABLE_ENGAGEMENT,
    TIPS,
    WALLET,
    compute_account,
    engagement_account,
    provider_account,
)
from ledger.budget import Budget, BudgetExceeded, Hold, PauseState, Snapshot
from ledger.errors import InvalidPosting, LedgerError, UnbalancedTransaction
from ledger.journal import Entry, Journal, Posted
from ledger.accounts import COMMODITY

__all__ = [
    "COMMODITY",
    "OPENING",
    "RECEIVABLE_ENGAGEMENT",
    "TIPS",
    "WALLET",
    "Budget",
    "BudgetExceeded",
    "Entry",
    "Hold",
    "InvalidPosting",
    "Journal",
    "LedgerError",
    "PauseState",
    "Posted",
    "Snapshot",
    "UnbalancedTransaction",
    "compute_account",
    "engagement_account",
    "provider_account",
]
