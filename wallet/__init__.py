"""On-chain credits: balance, tips, engagement income, settlement, reconciliation.

Errors (wallet.errors):
    WalletError
     +-- RpcUnavailable (+ RpcErrorReply, RpcLimited) | ChainMismatch
     +-- PaymentRefused (+ InsufficientGas, TransactionRejected) | KeystoreError | NotOnChain
"""

from wallet.earnings import accrue_engagement
from wallet.errors import ChainMismatch, KeystoreError, NotOnChain, PaymentRefused, RpcUnavailable, WalletError
from wallet.reconcile import ReconcileResult, latest_reconciliation
from wallet.scanner import ScanResult
from wallet.settlement import SettleReport
from wallet.wallets import Balance, ChainWallet, LedgerWallet, Wallet, WalletStatus, migrate

__all__ = [
    "Balance", "ChainMismatch", "ChainWallet", "KeystoreError", "LedgerWallet", "NotOnChain", "PaymentRefused",
    "ReconcileResult", "RpcUnavailable", "ScanResult", "SettleReport", "Wallet", "WalletError", "WalletStatus",
    "accrue_engagement", "latest_reconciliation", "migrate",
]
