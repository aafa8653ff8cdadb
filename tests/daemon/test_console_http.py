"""The console over the real status server: what it shows, and approve/reject behind the token, CSRF and origin checks.

On SQLite and PostgreSQL, with the held drafts in the real task store.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from agents.tasks import APPROVED, HELD, REJECTED, TaskStore
from config.settings import Settings
from daemon.http import StatusServer
from daemon.service import Service
from ledger import Entry
from ledger.funding import deposit
from publishers.outbox import Outbox
from tests.daemon.console_support import Forms, hold_draft
from tests.daemon.test_service import CR, Recorder, make_service

TOKEN = "console-token-Vq3ZkPp8sW2mX7rT"


def settings(tmp_path: Path, token: str | None) -> Settings:
    s = Settings(state_dir=tmp_path / "state", budget={"min_balance": "1", "resume_balance": "2"},
                 http={"enabled": False})
    return s.model_copy(update={"http": s.http.model_copy(update={
        "console_token_value": SecretStr(token) if token else None})})


class Console:
    """A started status server on a service with two held drafts, and a browser-like client."""

    def __init__(self, svc: Service, server: StatusServer, http: httpx.AsyncClient, held: list[str]):
        self.svc, self.server, self.http, self.held = svc, server, http, held
        host, port = server.address
        self.base = f"http://{host}:{port}"
        self.store = TaskStore(svc.engine, persona=svc.settings.persona)

    async def page(self) -> str:
        r = await self.http.get(self.base + "/")
        assert r.status_code == 200
        return r.text

    async def post(self, path: str, data: dict[str, str], **headers: str) -> httpx.Response:
        hdrs = {"Origin": self.base, "Sec-Fetch-Site": "same-origin", **headers}
        return await self.http.post(self.base + path, data=data, headers={k: v for k, v in hdrs.items() if v})

    async def unlock(self) -> None:
        r = await self.post("/unlock", {**Forms(await self.page()).first("/unlock"), "token": TOKEN})
        assert r.status_code == 303 and r.headers["location"] == "/?done=unlocked", r.text


async def _console(db_url: str, tmp_path: Path, token: str | None, bind: str = "127.0.0.1") -> AsyncIterator[Console]:
    svc = make_service(db_url, tmp_path, Recorder([]), settings=settings(tmp_path, token))
    store = TaskStore(svc.engine, persona=svc.settings.persona)
    store.migrate()
    Outbox(svc.engine).migrate()  # the daemon opens every room's tables (daemon/state.py): the page reads them
    held = [hold_draft(store, 1, title="Rust 2026: builds a fifth faster", score=6,
                       reason="held: risky (novelty 0.20 < 0.3)", cost=123_000),
            hold_draft(store, 2, title="What the new borrow checker changes", score=7,
                       reason="held: approval mode is manual", cost=45_000)]
    server = StatusServer(svc, bind, 0)
    await server.start()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            c = Console(svc, server, http, held)
            c.base = f"http://127.0.0.1:{server.address[1]}"
            yield c
    finally:
        await server.stop()
        svc.engine.dispose()


@pytest.fixture
async def console(db_url: str, tmp_path: Path) -> AsyncIterator[Console]:
    async for c in _console(db_url, tmp_path, TOKEN):
        yield c


@pytest.fixture
async def read_only(db_url: str, tmp_path: Path) -> AsyncIterator[Console]:
    async for c in _console(db_url, tmp_path, None):
        yield c


async def test_the_console_shows_held_drafts_spend_funding_and_failures(console: Console) -> None:
    svc = console.svc
    deposit(svc.journal, 3 * CR)
    svc.journal.post("compute", [Entry("expenses:compute:writer", 250_000), Entry("liabilities:provider:embedded", -250_000)],
                     idempotency_key="w1", model="smollm2-135m-instruct")
    console.store.reject(console.held[1], "off topic")
    page = await console.page()
    assert "Rust 2026: builds a fifth faster" in page and "held: risky (novelty 0.20 &lt; 0.3)" in page
    assert "0.123000 cr" in page and "<td>6</td>" in page  # cost and critic score
    assert "What the new borrow checker changes" in page.split('id="failures"')[1]  # rejected: a failure with why
    assert "rejected by a person: off topic" in page
    assert "writer" in page.split('id="spend-agent"')[1] and "smollm2-135m-instruct" in page.split('id="spend-model"')[1]
    assert "0.250000 cr" in page
    assert "under <b>1.000000 cr</b> (min_balance)" in page and "<b>2.000000 cr</b> (resume_balance)" in page
    assert "selfpub ledger deposit" in page  # how to fund it in ledger mode
    assert "next cycle" in page and 'data-refresh="30"' in page and 'id="autorefresh"' in page
    assert "http-equiv" not in page  # a meta refresh the operator cannot stop fails WCAG 2.2.1
    assert 'id="unlock"' in page and 'action="/drafts/approve"' not in page  # locked: no buttons yet


async def test_read_only_without_a_token_says_how_to_enable(read_only: Console) -> None:
    page = await read_only.page()
    assert 'id="read-only"' in page and "console_token_file" in page and "$CREDENTIALS_DIRECTORY" in page
    assert "<form" not in page
    r = await read_only.post("/drafts/approve", {"task": read_only.held[0], "csrf": ""})
    assert r.status_code == 403 and "read-only" in r.text
    assert read_only.store.get(read_only.held[0]).status == HELD


async def test_approve_and_reject_through_the_console(console: Console) -> None:
    await console.unlock()
    page = await console.page()
    assert 'id="unlocked"' in page
    first, second = console.held
    r = await console.post("/drafts/approve", Forms(page).first("/drafts/approve", first))
    assert r.status_code == 303 and r.headers["location"] == "/?done=approved"
    assert console.store.get(first).status == APPROVED
    assert console.store.get(first).reasons[-1] == "approved by a person"  # `selfpub drafts approve`'s own words
    page = await console.page()
    assert first not in page.split('id="held"')[1] and second in page
    form = Forms(page).first("/drafts/reject", second)
    r = await console.post("/drafts/reject", {**form, "reason": "off topic for this persona"})
    assert r.status_code == 303 and r.headers["location"] == "/?done=rejected"
    task = console.store.get(second)
    assert task.status == REJECTED and task.reasons[-1] == "rejected by a person: off topic for this persona"
    assert 'id="held-none"' in await console.page()


async def test_a_write_needs_the_unlock(console: Console) -> None:
    form = Forms(await console.page()).first("/unlock")
    r = await console.post("/drafts/approve", {"csrf": form["csrf"], "task": console.held[0]})
    assert r.status_code == 403 and "locked" in r.text
    assert console.store.get(console.held[0]).status == HELD


async def test_a_wrong_or_missing_token_does_not_unlock(console: Console, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for token in ("", "wrong", TOKEN[:-1]):
        form = Forms(await console.page()).first("/unlock")
        r = await console.post("/unlock", {**form, "token": token})
        assert r.status_code == 403 and "wrong console token" in r.text and "set-cookie" not in r.headers
    await console.unlock()
    for text in [str(r.__dict__) for r in caplog.records] + [caplog.text, await console.page()]:
        assert TOKEN not in text  # never logged, never echoed


async def test_too_many_wrong_tokens_lock_the_unlock_for_a_while(console: Console) -> None:
    for _ in range(5):
        r = await console.post("/unlock", {**Forms(await console.page()).first("/unlock"), "token": "guess"})
        assert r.status_code == 403
    r = await console.post("/unlock", {**Forms(await console.page()).first("/unlock"), "token": TOKEN})
    assert r.status_code == 429 and r.headers["retry-after"] == "60" and "set-cookie" not in r.headers


async def test_cross_origin_writes_are_refused(console: Console) -> None:
    await console.unlock()
    target = console.held[0]
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Origin": "", "Sec-Fetch-Site": "", "Referer": "http://evil.example/x"},
                    {"Origin": "", "Sec-Fetch-Site": ""},  # neither Origin nor Referer
                    {"Sec-Fetch-Site": "cross-site"}, {"Host": "rebound.example:1"}):
        form = Forms(await console.page()).first("/drafts/approve", target)
        r = await console.post("/drafts/approve", form, **headers)
        assert r.status_code == 403, (headers, r.text)
    assert console.store.get(target).status == HELD


async def test_a_replayed_or_forged_csrf_token_is_refused(console: Console) -> None:
    await console.unlock()
    first, second = console.held
    page = await console.page()
    form = Forms(page).first("/drafts/approve", first)
    assert (await console.post("/drafts/approve", form)).status_code == 303
    replay = await console.post("/drafts/reject", {**Forms(page).first("/drafts/reject", second)})
    assert replay.status_code == 403 and "stale" in replay.text  # the page's token was spent by the approve
    forged = {**Forms(await console.page()).first("/drafts/reject", second), "csrf": "1.abc.def"}
    assert (await console.post("/drafts/reject", forged)).status_code == 403
    missing = {k: v for k, v in Forms(await console.page()).first("/drafts/reject", second).items() if k != "csrf"}
    assert (await console.post("/drafts/reject", missing)).status_code == 403
    assert console.store.get(second).status == HELD


async def test_only_urlencoded_posts_to_the_write_paths(console: Console) -> None:
    base = console.base
    assert (await console.http.post(base + "/", data={"a": "b"})).status_code == 405
    assert (await console.http.put(base + "/drafts/approve", content=b"x")).status_code == 405
    r = await console.http.post(base + "/drafts/approve", json={"task": console.held[0]},
                                headers={"Origin": base})
    assert r.status_code == 415
    r = await console.http.post(base + "/drafts/approve", content=b"x" * 9000,
                                headers={"Origin": base, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    page = await console.http.get(base + "/")
    csp = page.headers["content-security-policy"]
    assert "form-action 'self'" in csp and "frame-ancestors 'none'" in csp
    [script] = re.findall(r"<script>(.*?)</script>", page.text)  # the only script, allowed by its hash alone
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}';" in csp and "unsafe-inline" not in csp.split("script-src")[1]
    assert page.headers["x-frame-options"] == "DENY"


async def test_approving_a_draft_no_longer_held_is_a_conflict(console: Console) -> None:
    await console.unlock()
    first = console.held[0]
    form = Forms(await console.page()).first("/drafts/approve", first)
    console.store.reject(first, "decided on the command line meanwhile")
    r = await console.post("/drafts/approve", form)
    assert r.status_code == 409 and console.store.get(first).status == REJECTED


async def test_bound_to_every_interface_the_console_cannot_name_itself_and_refuses_writes(
        db_url: str, tmp_path: Path) -> None:
    async for console in _console(db_url, tmp_path, TOKEN, bind="0.0.0.0"):
        page = await console.page()  # reads as usual
        r = await console.post("/unlock", {**Forms(page).first("/unlock"), "token": TOKEN})
        assert r.status_code == 403 and "Host" in r.text and "set-cookie" not in r.headers
