"""Money: double-entry journal, budget reservations and pause state, reports."""

from ledger.budget import Budget, BudgetExceeded, Hold, PauseState, Snapshot
from ledger.journal import (
    OPENING,
    RECEIVABLE_ENGAGEMENT,
    TIPS,
    WALLET,
    Entry,
    InvalidPosting,
    Journal,
    LedgerError,
    Posted,
    UnbalancedTransaction,
    compute_account,
    engagement_account,
    provider_account,
)
from ledger.models import COMMODITY

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
