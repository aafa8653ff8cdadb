"""The only place that builds a real Web3 and wallet from Settings."""

from __future__ import annotations

import requests
from web3 import Web3
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from config.settings import Settings
from ledger.journal import Journal
from wallet.chain import NodeProvider
from wallet.errors import RpcUnavailable, WalletError
from wallet.keystore import load_signer
from wallet.wallets import ChainWallet, LedgerWallet

AnyWallet = LedgerWallet | ChainWallet  # what build_wallet makes (the daemon's slot reads both kinds' settings)


def build_web3(settings: Settings) -> Web3:
    """An HTTP JSON-RPC client with the configured timeout and a short retry."""
    w = settings.wallet
    # web3 8 needs the error types spelled out. Only transport failures are retried in-line: a 429 or
    # 5xx answer is classified (wallet.chain.rpc) and the job retries at its next tick, not 0.2 s later;
    # NodeProvider sends nothing before a 429's Retry-After has passed.
    retry = ExceptionRetryConfiguration(errors=(requests.ConnectionError, requests.Timeout), retries=2,
                                        backoff_factor=0.2)
    provider = NodeProvider(w.rpc_url, request_kwargs={"timeout": w.rpc_timeout_seconds},
                            exception_retry_configuration=retry)
    return Web3(provider)


def build_wallet(settings: Settings, journal: Journal) -> AnyWallet:
    """The wallet of settings.wallet.mode: ledger, evm (JSON-RPC) or embedded (in-process EVM)."""
    w = settings.wallet
    if w.mode == "ledger":
        return LedgerWallet(journal, w)
    if w.mode == "embedded":
        from wallet.embedded import EmbeddedChain

        chain = EmbeddedChain.start()
        return ChainWallet(
            chain.w3, journal, w, token=chain.token_address, address=chain.agent, signer=chain.agent_signer,
            mode="embedded", embedded=chain,
        )
    missing = [k for k in ("rpc_url", "chain_id", "token_address", "address") if getattr(w, k) is None]
    if missing:
        raise WalletError(f"wallet.mode = 'evm' needs wallet.{', wallet.'.join(missing)} in the config")
    signer = None
    if w.keystore_file is not None:
        if w.keystore_password_value is None:
            raise WalletError("wallet.keystore_file is set but wallet.keystore_password (file or env) is not")
        signer = load_signer(w.keystore_file, w.keystore_password_value.get_secret_value())
    wallet = ChainWallet(build_web3(settings), journal, w, token=w.token_address, address=w.address, signer=signer)
    try:
        wallet.connect()  # a wrong chain id is refused here, at start
    except RpcUnavailable:
        pass  # the node is down: the cycle goes on from the ledger, marked stale
    return wallet
