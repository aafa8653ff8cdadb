"""The demo's machine reader: it buys the published articles over x402, and the wallet books what they earned.

    sell_reads(settings, engine, chain, wallet)
        the site (website.build_site_app over the published state), behind the paywall (payments/), its
        facilitator the x402 SDK's own on the embedded chain (CreditToken3009), signing with a dev account
        a reader (another dev account, given credits) pays with the SDK's httpx client: 402, sign, 200
        for every published article: its Markdown and its brief
        wallet.scan() books each settled read as income:reads:<kind> with the article's post and task

All in-process (ASGI), as the rest of the demo: no port, no network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine

from config.settings import Settings
from payments.paywall import Paywall
from payments.x402 import facilitator_on, read_domain, resolve_terms, resource_server, x402_pattern
from wallet.reads import PaidReads
from website import PAID_PATHS, PublishedContent, build_site_app

READER_FUNDS = 10_000_000  # credits (ucr) the reader is given to buy with


@dataclass
class ReadsSold:
    """What the reader bought: (path, status) per request and the ucr booked as income:reads."""

    requests: list[tuple[str, int]] = field(default_factory=list)
    booked_ucr: int = 0

    @property
    def paid(self) -> int:
        return sum(1 for _, status in self.requests if status == 200)


async def sell_reads(settings: Settings, engine: Engine, chain, wallet) -> ReadsSold:  # noqa: ANN001
    """Let a machine reader buy every published article (Markdown and brief) and book the income."""
    from eth_account import Account
    from x402 import x402Client
    from x402.http.clients.httpx import x402AsyncTransport
    from x402.mechanisms.evm import EthAccountSigner
    from x402.mechanisms.evm.exact import register_exact_evm_client

    network = f"eip155:{chain.chain_id}"
    wallet_terms = settings.wallet.model_copy(update={"chain_id": chain.chain_id, "token_address": chain.token_address,
                                                      "address": chain.agent})
    x = settings.x402.model_copy(update={"enabled": True})
    terms = resolve_terms(x, wallet_terms, domain=read_domain(chain.w3, chain.token_address))
    facilitator_account, reader_account = chain.others[-1], chain.others[-2]
    content = PublishedContent(engine, settings.persona)

    def attribute(kind: str, slug: str) -> tuple[str | None, str | None]:  # noqa: ARG001
        article = content.article(slug)
        return (article.key, article.task_id) if article is not None else (None, None)

    paywall = Paywall(resource_server(facilitator_on(chain.w3, chain.dev_key(facilitator_account), network), network),
                      terms, PaidReads(engine), attribute=attribute,
                      patterns={kind: x402_pattern(path) for kind, path in PAID_PATHS.items()})
    app = build_site_app(content, settings, middleware=paywall.middleware())

    chain.mint(reader_account, READER_FUNDS)
    reader = register_exact_evm_client(x402Client(), EthAccountSigner(Account.from_key(chain.dev_key(reader_account))),
                                       networks=network)
    reader.set_spend_controls({"allowed_assets": [{"network": network, "asset": chain.token_address}],
                               "max_amount_per_payment": False})
    sold = ReadsSold()
    wallet.scan()  # what came before (the reader's mint is not the agent's): the next scan is the reads only
    transport = x402AsyncTransport(reader, httpx.ASGITransport(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://site.demo") as http:
        for listed in content.listing():
            for path in (f"/a/{listed.slug}.md", f"/api/briefs/{listed.slug}"):
                resp = await http.get(path)
                sold.requests.append((path, resp.status_code))
    sold.booked_ucr = wallet.scan().counted_ucr
    return sold
