"""Paid reads (issue 12.2): the site's paid paths behind the x402 SDK, against anvil, CreditToken3009 and the
SDK's own facilitator; the SDK's paying client (or a hand-mutated payment where it will not make a bad one).

Every refused payment: 402 (or 503 when the facilitator cannot decide), nothing served, nothing moved on chain,
nothing booked. A settled read is booked once as income:reads:<kind> at wallet.confirmations, with its post and
task, and reversed when a reorg drops its transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from x402.http import x402HTTPClient
from x402.http.clients.httpx import x402AsyncTransport

from sqlalchemy import select
from web3 import Web3

from config.settings import Settings
from kernel.db import make_engine
from ledger.accounts import TIPS, WALLET, reads_account
from ledger.journal import Journal
from ledger.models import Transaction
from ledger.reads import task_outcomes
from payments.paywall import Paywall
from payments.x402 import (
    LocalFacilitator,
    landed_on,
    local_facilitator,
    read_domain,
    remote_facilitator,
    resolve_terms,
    resource_server,
)
from tests.peers.anvil import free_port, rpc_call
from tests.peers.x402 import X402Peer, deploy_x402
from wallet import migrate
from wallet.reads import PaidReads
from wallet.scanner import TipScanner

ARTICLE = "# Hello\n\nThe full article, sources below.\n"
PRICE_UCR = 50_000  # 0.05 credits
SITE = "http://site.test"
TXN = Transaction.__table__


def site_app(paywall: Paywall) -> Starlette:
    """A tiny stand-in of the site: the two paid paths (404 for an unknown slug) and a free page."""

    async def article(request: Request) -> Response:
        slug = request.path_params["slug"]
        if slug != "hello":
            return PlainTextResponse("not found", status_code=404)
        return PlainTextResponse(ARTICLE, media_type="text/markdown")

    async def brief(request: Request) -> Response:
        return JSONResponse({"slug": request.path_params["slug"], "key_points": ["one"]})

    async def index(_: Request) -> Response:
        return PlainTextResponse("free index")

    return Starlette(routes=[Route("/a/{slug}.md", article), Route("/api/briefs/{slug}", brief), Route("/", index)],
                     middleware=paywall.middleware())


@dataclass
class Site:
    peer: X402Peer
    journal: Journal
    reads: PaidReads
    paywall: Paywall
    app: Starlette
    start_block: int

    def client(self, payer: int = 0) -> httpx.AsyncClient:
        """The SDK's paying httpx client, talking to the app in-process."""
        transport = x402AsyncTransport(self.peer.paying_client(payer), httpx.ASGITransport(self.app))
        return httpx.AsyncClient(transport=transport, base_url=SITE)

    def plain(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(self.app), base_url=SITE)

    def scanner(self, confirmations: int) -> TipScanner:
        return TipScanner(self.peer.w3, self.journal, chain_id=self.peer.node.chain_id, token=self.peer.token,
                          address=self.peer.agent, decimals=self.peer.decimals, confirmations=confirmations,
                          block_range=1000, start_block=self.start_block)

    def income(self, kind: str = "article") -> int:
        return -self.journal.balance(reads_account(kind))


def settings_for(peer: X402Peer, **x402) -> Settings:  # noqa: ANN003
    wallet = {"mode": "evm", "rpc_url": peer.node.url, "chain_id": peer.node.chain_id, "token_address": peer.token,
              "address": peer.agent}
    return Settings.model_validate({"wallet": wallet, "x402": {"enabled": True, "price_article": "0.05",
                                                              "price_brief": "0.02", **x402}})


def make_site(peer: X402Peer, db: Path | str, facilitator=None) -> Site:  # noqa: ANN001
    engine = make_engine(db if isinstance(db, str) else f"sqlite:///{db}")
    journal = Journal(engine)
    journal.migrate()
    migrate(engine)
    s = settings_for(peer)
    terms = resolve_terms(s.x402, s.wallet, domain=read_domain(peer.w3, peer.token))
    facilitator = facilitator or local_facilitator(peer.node.url, peer.facilitator_key, terms.network)
    reads = PaidReads(engine)
    lookup = {("article", "hello"): ("post-hello", "task-hello")}
    paywall = Paywall(resource_server(facilitator, terms.network), terms, reads,
                      attribute=lambda kind, slug: lookup.get((kind, slug), (None, None)), landed=landed_on(peer.w3, terms))
    return Site(peer, journal, reads, paywall, site_app(paywall), int(peer.w3.eth.block_number))


@pytest.fixture
def site(x402_peer: X402Peer, tmp_path: Path) -> Site:
    return make_site(x402_peer, tmp_path / "state.db")


@pytest.fixture
def any_db_site(x402_peer: X402Peer, db_url: str) -> Iterator[Site]:
    """The site on SQLite and on the real PostgreSQL."""
    site = make_site(x402_peer, db_url)
    yield site
    site.journal.engine.dispose()


def booked(site: Site, kind: str) -> list:
    """The ledger transactions of a kind, oldest first."""
    with site.journal.engine.connect() as conn:
        return conn.execute(select(TXN).where(TXN.c.kind == kind).order_by(TXN.c.id)).all()


async def payment_required(site: Site, path: str = "/a/hello.md"):  # noqa: ANN201
    """The 402 a reader gets, decoded by the SDK's HTTP client."""
    async with site.plain() as http:
        resp = await http.get(path)
    assert resp.status_code == 402
    return x402HTTPClient(site.peer.paying_client()).get_payment_required_response(resp.headers.get, resp.json())


async def send_paid(site: Site, payload, path: str = "/a/hello.md") -> httpx.Response:  # noqa: ANN001
    headers = x402HTTPClient(site.peer.paying_client()).encode_payment_signature_header(payload)
    async with site.plain() as http:
        return await http.get(path, headers=headers)


# -- 402, then 200 once paid ---------------------------------------------------------------------


async def test_an_unpaid_read_is_402_with_the_terms_and_free_pages_stay_free(site: Site) -> None:
    required = await payment_required(site)
    (req,) = required.accepts
    assert (req.scheme, req.network, req.asset, req.pay_to) == ("exact", site.peer.network, site.peer.token, site.peer.agent)
    assert int(req.amount) == PRICE_UCR * 10**12 and req.extra["name"] == site.peer.name
    async with site.plain() as http:
        unpaid = await http.get("/a/hello.md")
        assert ARTICLE not in unpaid.text
        assert (await http.get("/")).text == "free index"
    brief = await payment_required(site, "/api/briefs/hello")
    assert int(brief.accepts[0].amount) == 20_000 * 10**12


async def test_a_paid_read_is_served_and_booked_once_at_confirmations(any_db_site: Site) -> None:
    site = any_db_site
    peer = site.peer
    before = peer.balance_of(peer.agent)
    async with site.client() as http:
        resp = await http.get("/a/hello.md")
    assert resp.status_code == 200 and resp.text == ARTICLE
    settled = x402HTTPClient(peer.paying_client()).get_payment_settle_response(resp.headers.get)
    assert settled.success and settled.transaction
    assert peer.balance_of(peer.agent) == before + PRICE_UCR * 10**12
    (row,) = site.reads.rows()
    assert (row["status"], row["tx_hash"], row["kind"], row["post_id"]) == ("settled", settled.transaction.lower(),
                                                                           "article", "post-hello")

    scanner = site.scanner(confirmations=2)
    scanner.scan()
    assert site.income() == 0  # not deep enough yet
    peer.mine(2)
    scanner.scan()
    scanner.scan()
    assert site.income() == PRICE_UCR
    assert site.journal.balance(WALLET) == PRICE_UCR
    (txn,) = booked(site, "read")
    assert (txn.post_id, txn.task_id, txn.tx_hash) == ("post-hello", "task-hello", settled.transaction.lower())
    # Attributed to its task: the bandit's history (the task knows its feed) sees the read's income.
    assert task_outcomes(site.journal, [("task-hello", ["post-hello"])])["task-hello"] == (0, PRICE_UCR)


async def test_a_replayed_payment_is_402_and_not_booked_twice(site: Site) -> None:
    required = await payment_required(site)
    payload = await site.peer.paying_client().create_payment_payload(required)
    first = await send_paid(site, payload)
    assert first.status_code == 200
    balance = site.peer.balance_of(site.peer.agent)

    again = await send_paid(site, payload)
    assert again.status_code == 402 and ARTICLE not in again.text
    assert site.peer.balance_of(site.peer.agent) == balance
    assert len(site.reads.rows()) == 1
    site.scanner(confirmations=0).scan()
    assert site.income() == PRICE_UCR


async def test_a_payment_id_seen_before_is_not_settled_again(any_db_site: Site) -> None:
    """Two requests racing with one payment: the second finds the payment id claimed and aborts before settling."""
    site = any_db_site
    required = await payment_required(site)
    payload = await site.peer.paying_client().create_payment_payload(required)
    auth = payload.payload["authorization"]
    from wallet.reads import Claim, payment_id

    pid = payment_id(site.peer.network, site.peer.token, auth["from"], auth["nonce"])
    assert site.reads.claim(Claim(pid, site.peer.node.chain_id, site.peer.token, auth["from"], auth["nonce"],
                                  "article", "hello", int(auth["value"]), PRICE_UCR))
    resp = await send_paid(site, payload)
    assert resp.status_code == 402 and ARTICLE not in resp.text
    assert not site.peer.authorization_used(auth["from"], bytes.fromhex(auth["nonce"][2:]))


@pytest.mark.parametrize("what", ["underpayment", "payee", "network"])
async def test_a_payment_not_matching_the_terms_is_402_and_moves_nothing(site: Site, what: str) -> None:
    required = await payment_required(site)
    req = required.accepts[0]
    if what == "underpayment":
        req.amount = str(int(req.amount) - 1)
    elif what == "payee":
        req.pay_to = site.peer.owner
    payload = await site.peer.paying_client().create_payment_payload(required)
    if what == "network":  # the SDK client would not sign for a network it is not set up for: mutate the payment
        payload.accepted.network = "eip155:1"
    balances = (site.peer.balance_of(site.peer.agent), site.peer.balance_of(site.peer.owner))
    resp = await send_paid(site, payload)
    assert resp.status_code == 402 and ARTICLE not in resp.text
    assert (site.peer.balance_of(site.peer.agent), site.peer.balance_of(site.peer.owner)) == balances
    assert site.reads.rows() == []


async def test_a_payment_in_another_token_is_402(site: Site) -> None:
    other = deploy_x402(site.peer.node)
    required = await payment_required(site)
    req = required.accepts[0]
    req.asset = other.token
    payload = await other.paying_client().create_payment_payload(required)
    resp = await send_paid(site, payload)
    assert resp.status_code == 402 and ARTICLE not in resp.text
    assert other.balance_of(site.peer.agent) == 0 and site.reads.rows() == []


async def test_an_expired_authorization_is_402(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's client on a clock 20 minutes slow signs an authorization that expired before it is sent."""
    import x402.mechanisms.evm.exact.client as exact_client

    required = await payment_required(site)
    slow = time.time() - 1200
    monkeypatch.setattr(exact_client.time, "time", lambda: slow)
    payload = await site.peer.paying_client().create_payment_payload(required)
    monkeypatch.undo()
    assert int(payload.payload["authorization"]["validBefore"]) < time.time()
    resp = await send_paid(site, payload)
    assert resp.status_code == 402 and ARTICLE not in resp.text
    auth = payload.payload["authorization"]
    assert not site.peer.authorization_used(auth["from"], bytes.fromhex(auth["nonce"][2:]))


async def test_a_paid_request_for_a_missing_page_settles_nothing(site: Site) -> None:
    balance = site.peer.balance_of(site.peer.agent)
    async with site.client() as http:
        resp = await http.get("/a/no-such-article.md")
    assert resp.status_code == 404
    assert site.peer.balance_of(site.peer.agent) == balance and site.reads.rows() == []


# -- outages: 503 with Retry-After ------------------------------------------------------------------


async def test_a_facilitator_service_that_is_down_is_503_with_retry_after(x402_peer: X402Peer, tmp_path: Path) -> None:
    down = make_site(x402_peer, tmp_path / "down.db", remote_facilitator(f"http://127.0.0.1:{free_port()}", timeout=2))
    async with down.client() as http:
        resp = await http.get("/a/hello.md")
    assert resp.status_code == 503 and resp.headers["retry-after"] == "30"
    assert ARTICLE not in resp.text and down.reads.rows() == []


async def test_a_chain_node_that_is_down_is_503_with_retry_after(x402_peer: X402Peer, tmp_path: Path) -> None:
    dead_rpc = local_facilitator(f"http://127.0.0.1:{free_port()}", x402_peer.facilitator_key, x402_peer.network,
                                 timeout=2)
    site = make_site(x402_peer, tmp_path / "dead.db", dead_rpc)
    required = await payment_required(site)  # terms need no chain: the 402 still answers
    payload = await x402_peer.paying_client().create_payment_payload(required)
    resp = await send_paid(site, payload)
    assert resp.status_code == 503 and resp.headers["retry-after"] == "30"
    assert ARTICLE not in resp.text and site.reads.rows() == []


# -- reorg ---------------------------------------------------------------------------------------


async def test_a_reorg_after_settlement_reverses_the_booked_read(site: Site) -> None:
    peer = site.peer
    async with site.client() as http:
        resp = await http.get("/a/hello.md")
    assert resp.status_code == 200
    scanner = site.scanner(confirmations=0)
    scanner.scan()
    assert site.income() == PRICE_UCR

    rpc_call(peer.node.url, "anvil_reorg", [1, []])  # the settlement's block is replaced by an empty one
    result = scanner.scan()
    assert result.reversed == 1
    assert site.income() == 0 and site.journal.balance(WALLET) == 0
    (read,) = booked(site, "read")
    (reversal,) = booked(site, "reversal")
    assert reversal.reverses_id == read.id and reversal.idempotency_key == f"reorg:{read.idempotency_key}"
    assert (reversal.post_id, reversal.task_id) == ("post-hello", "task-hello")


@pytest.mark.parametrize("recorded", ["settling", "failed"])
async def test_a_read_whose_settlement_was_never_recorded_is_matched_by_its_nonce(site: Site, recorded: str) -> None:
    """The process died after the facilitator sent the transfer and before settled() (settling), or the facilitator
    gave up on a receipt that came later (failed): the scanner still books a read, finding the claimed nonce in the
    transaction's AuthorizationUsed event; a tip from the same payer stays a tip."""
    peer = site.peer
    required = await payment_required(site)
    payload = await peer.paying_client().create_payment_payload(required)
    auth = payload.payload["authorization"]
    from wallet.reads import Claim, payment_id

    pid = payment_id(peer.network, peer.token, auth["from"], auth["nonce"])
    assert site.reads.claim(Claim(pid, peer.node.chain_id, peer.token, auth["from"], auth["nonce"], "article", "hello",
                                  int(auth["value"]), PRICE_UCR, "post-hello", "task-hello"))
    if recorded == "failed":
        site.reads.failed(pid, "settlement_pending")
    req = required.accepts[0]
    assert peer.facilitator.settle(payload, req).success  # settled, never recorded
    tip = peer.contract().functions.transfer(peer.agent, 10**18).transact({"from": auth["from"]})  # 1 credit tip
    peer.w3.eth.wait_for_transaction_receipt(tip)

    site.scanner(confirmations=0).scan()
    assert site.income() == PRICE_UCR
    assert -site.journal.balance(TIPS) == 1_000_000
    row = site.reads.get(pid)
    assert row["status"] == "settled" and row["tx_hash"] == booked(site, "read")[0].tx_hash


async def test_one_payment_sent_twice_at_once_is_served_and_settled_once(site: Site) -> None:
    import asyncio

    required = await payment_required(site)
    payload = await site.peer.paying_client().create_payment_payload(required)
    before = site.peer.balance_of(site.peer.agent)
    answers = await asyncio.gather(send_paid(site, payload), send_paid(site, payload))
    assert sorted(a.status_code for a in answers) == [200, 402]
    assert sum(ARTICLE in a.text for a in answers) == 1
    assert site.peer.balance_of(site.peer.agent) == before + PRICE_UCR * 10**12
    (row,) = site.reads.rows()
    assert row["status"] == "settled"


# -- paid, then the facilitator failed: the reader is served when it presents the same payment again ----------------


class FaultAfterSettle:
    """The SDK's facilitator, whose settle sends the transfer, gets its receipt, then raises (a timeout, say)."""

    def __init__(self, facilitator):  # noqa: ANN001
        self.facilitator = facilitator
        self.settles = 0

    def verify(self, payload, requirements):  # noqa: ANN001, ANN201
        return self.facilitator.verify(payload, requirements)

    def settle(self, payload, requirements):  # noqa: ANN001, ANN201
        self.settles += 1
        result = self.facilitator.settle(payload, requirements)
        assert result.success
        raise TimeoutError("the facilitator lost the answer after sending the transfer")

    def get_supported(self):  # noqa: ANN201
        return self.facilitator.get_supported()


def transfers_to_agent(peer: X402Peer, payer: str) -> int:
    """ERC-20 Transfer events from `payer` to the agent on the chain."""
    topic = lambda address: "0x" + address.lower().removeprefix("0x").rjust(64, "0")  # noqa: E731
    transfer = "0x" + Web3.keccak(text="Transfer(address,address,uint256)").hex().removeprefix("0x")
    return len(peer.w3.eth.get_logs({"address": peer.token, "fromBlock": 0, "toBlock": "latest",
                                     "topics": [transfer, topic(payer), topic(peer.agent)]}))


@pytest.mark.parametrize("when", ["before the scan", "after the scan"])
async def test_a_read_paid_but_answered_503_is_served_on_the_same_payment_once(x402_peer: X402Peer, db_url: str,
                                                                              when: str) -> None:
    """On SQLite and the real PostgreSQL."""
    peer = x402_peer
    fault = FaultAfterSettle(peer.facilitator)
    site = make_site(peer, db_url, LocalFacilitator(fault, lambda: peer.w3.eth.block_number))
    required = await payment_required(site)
    payload = await peer.paying_client().create_payment_payload(required)
    payer = payload.payload["authorization"]["from"]
    before = peer.balance_of(peer.agent)

    first = await send_paid(site, payload)
    assert first.status_code == 503 and ARTICLE not in first.text
    assert peer.balance_of(peer.agent) == before + PRICE_UCR * 10**12  # paid all the same
    (row,) = site.reads.rows()
    assert (row["status"], row["served_at"]) == ("settling", None)
    if when == "after the scan":  # the scanner matched the transfer by its nonce: the record says settled
        site.scanner(confirmations=0).scan()
        assert site.reads.rows()[0]["status"] == "settled"

    # Presented for another page, or with a signature that is not the payer's: not this read, nothing served.
    assert (await send_paid(site, payload, "/api/briefs/hello")).status_code == 402
    forged = payload.model_copy(deep=True)
    signature = forged.payload["signature"]
    forged.payload["signature"] = signature[:-4] + ("00" if signature[-4:-2] != "00" else "11") + signature[-2:]
    forged_resp = await send_paid(site, forged)
    assert forged_resp.status_code != 200 and ARTICLE not in forged_resp.text

    again = await send_paid(site, payload)
    assert again.status_code == 200 and again.text == ARTICLE
    assert fault.settles == 1 and transfers_to_agent(peer, payer) == 1  # never settled again
    assert peer.balance_of(peer.agent) == before + PRICE_UCR * 10**12
    (row,) = site.reads.rows()
    assert row["status"] == "settled" and row["served_at"] is not None and row["tx_hash"]

    third = await send_paid(site, payload)  # served once: now it is a replay
    assert third.status_code == 402 and ARTICLE not in third.text

    scanner = site.scanner(confirmations=0)
    scanner.scan()
    scanner.scan()
    assert site.income() == PRICE_UCR
    (read,) = booked(site, "read")
    assert read.tx_hash == row["tx_hash"] and (read.post_id, read.task_id) == ("post-hello", "task-hello")
    site.journal.engine.dispose()
