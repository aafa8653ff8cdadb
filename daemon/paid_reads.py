"""Paid reads for `selfpub run`: the x402 paywall handed to the site (website/ knows nothing of payments).

    paid_reads_middleware(settings, engine)  [] when x402 is off, else payments.Paywall.middleware():
        terms        [x402] + [wallet], the token's EIP-712 domain read from the chain at start
        facilitator  "local": the x402 SDK's facilitator on wallet.rpc_url, signing with [x402.signer]
                     a URL:   the SDK's HTTP facilitator client
        routes       website.routes.PAID_PATHS, kind by kind (one home for which paths are paid)
        attribution  the article's outbox key and task (website's PublishedContent), so the read's income
                     lands on the post's P&L and on the feed the bandit credits
Income is booked by the wallet's scan in the earnings job (wallet/reads.py), not here.
Every way this can fail at start (node down, no EIP-3009 token, no facilitator key) is a PaymentsError naming the
key and the fix: `selfpub run` says it in one line and exits 1 (daemon/startup.py), never with a traceback.
"""

from __future__ import annotations

from sqlalchemy import Engine

from config.settings import Settings
from daemon.wiring_wallet import build_web3
from payments.paywall import Paywall
from payments.x402 import (
    PaymentsError,
    TermsError,
    landed_on,
    local_facilitator,
    read_domain,
    remote_facilitator,
    resolve_terms,
    resource_server,
    x402_pattern,
)
from wallet.errors import KeystoreError
from wallet.keystore import load_key
from wallet.reads import PaidReads
from website import PublishedContent
from website.routes import PAID_PATHS


def paid_reads_middleware(settings: Settings, engine: Engine) -> list:
    """The site's payment middleware from settings ([] when [x402] is off)."""
    x = settings.x402
    if not x.enabled:
        return []
    if settings.wallet.mode != "evm" or not settings.wallet.rpc_url:
        raise TermsError("x402.enabled needs wallet.mode = \"evm\" with wallet.rpc_url: paid reads settle on a chain")
    key = _facilitator_key(settings) if x.facilitator == "local" else None  # a local file: checked before the node
    w3 = build_web3(settings)
    asset = x.asset or settings.wallet.token_address
    if not asset:
        raise TermsError("x402.asset is unset and so is wallet.token_address: set one of them")
    try:
        domain = read_domain(w3, asset, name=x.token_name, version=x.token_version)
    except Exception as exc:  # noqa: BLE001 - a node down, or no EIP-3009 token there: the same fix to look for
        raise PaymentsError(f"cannot read the token's name, version and decimals at {asset} (x402.asset, else "
                            f"wallet.token_address) through wallet.rpc_url ({type(exc).__name__}): check the node "
                            "and that the address is an EIP-3009 token; or set x402.token_name and "
                            "x402.token_version") from None
    terms = resolve_terms(x, settings.wallet, domain=domain)
    if key is not None:
        facilitator = local_facilitator(settings.wallet.rpc_url, key, terms.network,
                                        timeout=settings.wallet.rpc_timeout_seconds)
    else:
        facilitator = remote_facilitator(x.facilitator, timeout=settings.wallet.rpc_timeout_seconds)
    content = PublishedContent(engine, settings.persona)

    def attribute(kind: str, slug: str) -> tuple[str | None, str | None]:  # noqa: ARG001 - both kinds are one article's
        article = content.article(slug)
        return (article.key, article.task_id) if article is not None else (None, None)

    patterns = {kind: x402_pattern(path) for kind, path in PAID_PATHS.items()}
    paywall = Paywall(resource_server(facilitator, terms.network), terms, PaidReads(engine), attribute=attribute,
                      patterns=patterns, landed=landed_on(w3, terms))
    return paywall.middleware()


def _facilitator_key(settings: Settings) -> str:
    """The local facilitator's private key (0x hex) from [x402.signer]; TermsError naming the key when it cannot be had."""
    signer = settings.x402.signer
    if signer is None or signer.keystore_password_value is None:
        raise TermsError("x402.facilitator = \"local\" needs [x402.signer] keystore_file and keystore_password_file")
    try:
        return "0x" + load_key(signer.keystore_file, signer.keystore_password_value.get_secret_value()).hex()
    except KeystoreError as exc:
        raise TermsError(f"x402.signer.keystore_file: {exc}; or check x402.signer.keystore_password_file") from None
