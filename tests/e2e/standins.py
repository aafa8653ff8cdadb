"""Stand-in servers for the crash test, each on a real 127.0.0.1 socket, each with kill hooks.

- `DevtoStandIn`: the spec-checking FakeForem behind real HTTP, answering like Forem: 201 with id and
  url (on this server, so link cards never leave the machine), 422 for a repeated canonical_url, 429
  with Retry-After past the write limits. `on_create` runs after an article is stored and before the
  201 goes out (a kill there loses the answer, exactly the ambiguous case the outbox must resolve).
- `UsageLLM`: a fast OpenAI-compatible server answering every agent validly (research and critic
  JSON schemas, the writer's Markdown article and its WriterOutput repair schema) and reporting usage;
  every (prompt_tokens, completion_tokens) pair it reports is unique, so the call log ties each ledger
  transaction to the one answer it paid for. `on_request` / `on_answered` hooks.
- `RpcProxy`: a JSON-RPC pass-through to anvil; `on_send_raw` runs after eth_sendRawTransaction
  reached the node and before its answer reaches the daemon.
- `deploy_token` / `write_light_keystore`: the credit token on anvil, and a keystore that decrypts in
  milliseconds (the daemon is restarted dozens of times).
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.e2e.support import DATA, LoopbackHTTP, schema_name
from tests.publishers.forem import BASE as FOREM_BASE
from tests.publishers.forem import FakeForem, ForemSpec, error

Hook = Callable[..., Any] | None


class _Quiet(ThreadingHTTPServer):
    """Keeps handler errors in a list instead of printing them (a killed client resets connections)."""

    daemon_threads = True

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.errors: list[str] = []

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ANN401
        import sys

        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            self.errors.append(f"{type(exc).__name__}: {exc}")


class _Server(LoopbackHTTP):
    """A quiet ThreadingHTTPServer on a free loopback port (handler errors kept in httpd.errors)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self._listen(_Quiet(("127.0.0.1", 0), handler))


def _reply(h: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict[str, str] | None = None,
           content_type: str = "application/json") -> None:
    h.send_response(status)
    h.send_header("content-type", content_type)
    h.send_header("content-length", str(len(payload)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(payload)
    h.wfile.flush()


def _drop(h: BaseHTTPRequestHandler) -> None:
    """Close the connection without an answer (the process at the other end was just killed)."""
    h.close_connection = True


# -- Dev.to ------------------------------------------------------------------------------------------


class _Forem(FakeForem):
    """FakeForem with Forem's canonical_url uniqueness and URLs on the stand-in's own address."""

    def __init__(self, spec: ForemSpec, api_key: str, public_base: str):
        super().__init__(spec, api_key=api_key)
        self.public_base = public_base

    def _create(self, body: dict) -> httpx.Response:
        canonical = body["article"].get("canonical_url")
        if canonical and any(a["canonical_url"] == canonical for a in self.articles):
            return error(422, "Canonical url has already been taken. Email yo@dev.to for further details.")
        resp = super()._create(body)
        if resp.status_code != 201:
            return resp
        art = self.articles[-1]
        own = f"{self.public_base}{art['path']}"
        if art["canonical_url"] == art["url"]:
            art["canonical_url"] = own
        art["url"] = own
        return httpx.Response(201, json=art)


class DevtoStandIn:
    """Dev.to on 127.0.0.1: every API request validated against tests/data/specs/forem-api-v1.json.

    Limits (per API key, like Forem's): one write per `write_interval` seconds and `publish_limit`
    published articles per `publish_window` seconds; past them a 429 with Retry-After in seconds.
    """

    def __init__(self, api_key: str, *, write_interval: float = 0.9, publish_limit: int = 9,
                 publish_window: float = 30.0, spec: ForemSpec | None = None):
        self.errors: list[str] = []  # requests that did not match the spec
        self.statuses: list[tuple[str, str, int]] = []  # (method, path, status) of every API answer
        self.write_interval = write_interval
        self.publish_limit = publish_limit
        self.publish_window = publish_window
        self.on_create: Hook = None  # called with the stored article; a truthy return drops the answer
        self._last_write = -math.inf
        self._published: deque[float] = deque()
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:
                    _drop(self)  # the client died while sending
                    return
                if not self.path.startswith("/api/"):
                    stand_in._page(self)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = httpx.Request(self.command, FOREM_BASE + self.path, headers=headers, content=body)
                answer = stand_in.handle(request)
                if answer is None:
                    _drop(self)
                    return
                status, payload, extra = answer
                _reply(self, status, payload, extra)

            do_GET = do_POST = do_PUT = _handle

        self._server = _Server(Handler)
        self.url = self._server.url
        self.fake = _Forem(spec or ForemSpec(), api_key, self.url)

    @property
    def articles(self) -> list[dict]:
        """Every article created (in creation order)."""
        return self.fake.articles

    def running(self):  # noqa: ANN201
        """Serve while inside the block."""
        return self._server.running()

    @property
    def server_errors(self) -> list[str]:
        """Errors raised inside request handlers (connection resets excepted)."""
        return self._server.httpd.errors

    def _limited(self, request: httpx.Request) -> httpx.Response | None:
        """A 429 when this write passes a limit; otherwise the write is counted."""
        if request.method != "POST":
            return None
        now = time.monotonic()
        while self._published and now - self._published[0] >= self.publish_window:
            self._published.popleft()
        wait = self._last_write + self.write_interval - now
        if len(self._published) >= self.publish_limit:
            wait = max(wait, self._published[0] + self.publish_window - now)
        if wait > 0:
            return error(429, "Rate limit reached, try again later", {"retry-after": str(math.ceil(wait))})
        self._last_write = now
        try:
            published = bool(json.loads(request.content)["article"].get("published"))
        except (ValueError, KeyError, TypeError):
            published = False
        if published:
            self._published.append(now)
        return None

    def handle(self, request: httpx.Request) -> tuple[int, bytes, dict[str, str]] | None:
        """Validate, apply limits, answer; None when the on_create hook asked to drop the answer."""
        with self._lock:
            try:
                self.fake.spec.validate(request)
            except Exception as exc:  # noqa: BLE001 - a spec violation is a test failure, reported as 400
                self.errors.append(f"{request.method} {request.url.path}: {type(exc).__name__}: {exc}")
                return 400, json.dumps({"error": "request does not match the Forem spec", "status": 400}).encode(), {}
            before = len(self.fake.articles)
            resp = None
            if request.headers.get("api-key") == self.fake.api_key:
                resp = self._limited(request)
            if resp is None:
                resp = self.fake.handle(request)  # validates again: cheap next to a daemon restart
            self.statuses.append((request.method, request.url.path, resp.status_code))
            created = self.fake.articles[before:] if len(self.fake.articles) > before else []
        headers = {k: v for k, v in resp.headers.items() if k.lower() == "retry-after"}
        if created and self.on_create is not None and self.on_create(created[0]):
            return None
        return resp.status_code, resp.read(), headers

    def _page(self, h: BaseHTTPRequestHandler) -> None:
        """The public page of an article (what a link card fetch reads)."""
        path = urlsplit(h.path).path
        art = next((a for a in self.fake.articles if a["path"] == path), None)
        if art is None:
            _reply(h, 404, b"not found", content_type="text/plain")
            return
        page = (f"<html><head><title>{art['title']}</title>"
                f'<meta property="og:title" content="{art["title"]}">'
                f'<meta property="og:description" content="{art["description"]}"></head>'
                f"<body>{art['title']}</body></html>")
        _reply(h, 200, page.encode(), content_type="text/html; charset=utf-8")


# -- the LLM -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """One chat completion the stand-in answered, with the usage it reported."""

    n: int
    kind: str  # the response_format schema asked for (ResearchAnswer, WriterOutput, CriticOutput) or "text"
    prompt_tokens: int
    completion_tokens: int
    at: float  # time.time() when the answer was written
    asked: float = 0.0  # time.time() when the request had been read: the daemon was alive then


def _sections(body: dict) -> dict[str, str]:
    text = "\n".join(m.get("content") or "" for m in body.get("messages", []))
    return {m.group(1): m.group(2) for m in DATA.finditer(text)}


def _brief_parts(brief: str) -> tuple[str, str, list[tuple[str, str]]]:
    """(topic, angle, [(claim, source url)]) of a brief data section (agents.writer.brief_text)."""
    topic = angle = ""
    points = []
    for line in brief.splitlines():
        if line.startswith("topic: "):
            topic = line.removeprefix("topic: ")
        elif line.startswith("angle: "):
            angle = line.removeprefix("angle: ")
        elif line.startswith("- ") and line.endswith(")") and "(source: " in line:
            claim, _, url = line[2:-1].rpartition(" (source: ")
            points.append((claim, url))
        elif line.startswith("- "):  # a key point as the writer sees it: its claim, no URL (code lists the sources)
            points.append((line[2:], ""))
        elif line.startswith("source: "):
            points.append(("More on this", line.removeprefix("source: ")))
    return topic, angle, points


def _article(brief: str, revised: bool) -> tuple[str, str, list[str]]:
    """(title, body, tags) of an article that cites only the brief's sources."""
    topic, angle, points = _brief_parts(brief)
    cited = "\n\n".join(f"{claim.rstrip('.')} ([the announcement]({url}))." if url else f"{claim.rstrip('.')}."
                          for claim, url in points)
    # Context with no claims of its own, so the article clears the critic's length floor as a real one does.
    context = ("\n\nThe maintainers describe the change in their release notes, with migration steps for existing "
               "users. Teams that depend on the project should read those notes before they upgrade. Most projects "
               "can adopt the new version in a normal release cycle, and the old behaviour stays available for now. "
               "Testing the upgrade in a staging environment first remains the safest path for production systems. "
               "Questions and bug reports go to the public issue tracker, where the maintainers answer them weekly. "
               "Upgrade guides for the most common setups are promised for the next point release, along with a "
               "list of known issues.")
    closing = "\n\nWhy it matters: teams can adopt it without a rewrite." if revised else ""
    return (topic[:90] or "News of the day"), f"{angle or topic}\n\n{cited}{context}{closing}", ["news", "software"]


def answer(body: dict, first_review: bool) -> str:
    """The reply text to one agent request, valid for what it asked.

    research: the ResearchAnswer JSON; writer: the Markdown article (or, for its repair call, the
    WriterOutput JSON); critic: the CriticOutput JSON. Drafts cite only the brief's sources and carry
    nothing the critic's deterministic checks refuse, so they are approved and really published; the
    critic asks for one revision on the first review of about a third of the briefs.
    """
    kind = schema_name(body)
    sections = _sections(body)
    revised = "The previous draft was rejected" in json.dumps(body.get("messages", []))
    if kind == "ResearchAnswer" or (not kind and "feed_items" in sections):
        items = json.loads(sections["feed_items"])
        return json.dumps({
            "topic": items[0]["title"],
            "angle": items[0]["summary"][:200],
            "key_points": [{"claim": it["summary"][:300], "source_url": it["url"]} for it in items],
            "sources": [it["url"] for it in items],
        })
    if kind == "CriticOutput" or "draft" in sections:
        brief = sections.get("brief", "")
        if first_review and sum(map(ord, brief)) % 3 == 0:
            return json.dumps({"score": 4, "problems": ["the ending is abrupt"], "fixes": ["add why it matters"]})
        return json.dumps({"score": 8, "problems": [], "fixes": []})
    if "article" in sections:  # a revision of parts (Writer.revise): the last part sent, with why it matters
        k, _, text = [line for line in sections["article"].splitlines() if line.startswith("§")][-1].partition(" ")
        return f"{k} {text}\n\nWhy it matters: teams can adopt it without a rewrite."
    if kind == "WriterOutput" or "brief" in sections:
        title, body_md, tags = _article(sections.get("brief", ""), revised)
        if kind == "WriterOutput":
            return json.dumps({"title": title, "body_markdown": body_md, "tags": tags})
        return f"# {title}\n\n{body_md}\n\nTags: {', '.join(tags)}\n"
    return "ok"


class UsageLLM:
    """An OpenAI-compatible chat server that answers at once and reports usage on every answer.

    Usage: prompt_tokens ~ request characters / 4, completion_tokens ~ answer characters / 4 (never
    more than the request's max_tokens); the prompt count is nudged up until the pair is unique.
    `on_request(n)` runs before answering and `on_answered(answered)` after the answer was written;
    a truthy return from on_request drops the request unanswered.
    """

    def __init__(self) -> None:
        self.answered: list[Answered] = []
        self.on_request: Hook = None
        self.on_answered: Hook = None
        self._pairs: set[tuple[int, int]] = set()
        self._reviewed: set[int] = set()  # briefs the critic has seen
        self._n = 0
        self._lock = threading.Lock()
        llm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                if len(raw) < length:
                    _drop(self)  # the client died while sending
                    return
                if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
                    _reply(self, 404, b'{"error": {"message": "not found", "type": "not_found"}}')
                    return
                body = json.loads(raw)
                asked = time.time()
                with llm._lock:
                    llm._n += 1
                    n = llm._n
                if llm.on_request is not None and llm.on_request(n):
                    _drop(self)
                    return
                status, payload, done = llm._answer(n, body)
                done = replace(done, asked=asked)
                _reply(self, status, payload)
                with llm._lock:
                    llm.answered.append(done)
                if llm.on_answered is not None:
                    llm.on_answered(done)

        self._server = _Server(Handler)
        self.url = self._server.url + "/v1"

    def running(self):  # noqa: ANN201
        """Serve while inside the block."""
        return self._server.running()

    @property
    def server_errors(self) -> list[str]:
        """Errors raised inside request handlers (connection resets excepted)."""
        return self._server.httpd.errors

    def _answer(self, n: int, body: dict) -> tuple[int, bytes, Answered]:
        sections = _sections(body)
        with self._lock:
            key = hash(sections.get("brief", ""))
            first_review = "draft" in sections and key not in self._reviewed
            if "draft" in sections:
                self._reviewed.add(key)
        reply = answer(body, first_review)
        prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
        prompt = math.ceil(prompt_chars / 4) + 12
        completion = min(math.ceil(len(reply) / 4), int(body.get("max_tokens") or 1 << 30))
        with self._lock:
            while (prompt, completion) in self._pairs:
                prompt += 1
            self._pairs.add((prompt, completion))
        out = {
            "id": f"chatcmpl-standin-{n}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "standin"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
        return 200, json.dumps(out).encode(), Answered(n, schema_name(body) or "text", prompt, completion, time.time())


# -- the chain ----------------------------------------------------------------------------------------


class RpcProxy:
    """Forwards JSON-RPC to `upstream`; records every raw transaction the node accepted."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.sent: list[tuple[float, str]] = []  # (time.time(), tx hash) of accepted eth_sendRawTransaction
        self.on_send_raw: Hook = None  # called with the tx hash; a truthy return drops the answer
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if len(raw) < length or not raw:
                    _drop(self)  # the client died while sending
                    return
                req = urllib.request.Request(proxy.upstream, raw, {"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=30) as resp:
                    payload = resp.read()
                calls = json.loads(raw)
                replies = json.loads(payload)
                pairs = zip(calls, replies) if isinstance(calls, list) else [(calls, replies)]
                drop = False
                for call, reply in pairs:
                    if call.get("method") == "eth_sendRawTransaction" and "result" in reply:
                        proxy.sent.append((time.time(), reply["result"]))
                        if proxy.on_send_raw is not None and proxy.on_send_raw(reply["result"]):
                            drop = True
                if drop:
                    _drop(self)
                    return
                _reply(self, 200, payload)

        self._server = _Server(Handler)
        self.url = self._server.url

    def running(self):  # noqa: ANN201
        """Serve while inside the block."""
        return self._server.running()

    @property
    def server_errors(self) -> list[str]:
        """Errors raised inside request handlers (connection resets excepted)."""
        return self._server.httpd.errors


@dataclass
class Token:
    """The credit token deployed on anvil, and who is who."""

    address: str
    decimals: int
    funder: str
    w3: Any = field(repr=False)

    def contract(self):  # noqa: ANN201
        from wallet.chain import token_contract

        return token_contract(self.w3, self.address)

    def mint(self, to: str, ucr: int) -> None:
        """Mint ucr worth of tokens to `to` (a Transfer from the zero address: funding)."""
        from wallet.units import ucr_to_units

        tx = self.contract().functions.mint(to, ucr_to_units(ucr, self.decimals).units).transact({"from": self.funder})
        self.w3.eth.wait_for_transaction_receipt(tx)

    def transfers(self, sender: str, recipient: str | None = None) -> list[dict]:
        """Transfer logs from `sender` (to `recipient`, when given), oldest first."""
        from wallet.chain import TRANSFER_TOPIC, address_topic

        topics: list[Any] = [TRANSFER_TOPIC, address_topic(sender)]
        if recipient is not None:
            topics.append(address_topic(recipient))
        logs = self.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": self.address, "topics": topics})
        return [
            {"tx_hash": "0x" + bytes(lg["transactionHash"]).hex(), "log_index": int(lg["logIndex"]),
             "to": "0x" + bytes(lg["topics"][2]).hex()[-40:], "units": int.from_bytes(bytes(lg["data"])[-32:], "big")}
            for lg in logs
        ]


def deploy_token(rpc_url: str, funder: str, decimals: int = 18) -> Token:
    """Deploy the credit token from `funder` (an unlocked anvil account)."""
    from web3 import Web3

    from wallet.chain import token_artifact

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    art = token_artifact()
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor("credit", "CR", decimals).transact({"from": funder})
    address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return Token(address, decimals, funder, w3)


def write_light_keystore(path: Path, password: str) -> str:
    """A new key in a standard v3 keystore with a light scrypt (decrypts in ms); mode 0600; its address."""
    from eth_account import Account

    account = Account.create()
    data = Account.encrypt(account.key, password, kdf="scrypt", iterations=2**10)
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return account.address
