"""Bluesky adapter against a real local PDS: facets, link card with blob, threads, session reuse, faults."""

from __future__ import annotations

import io
import itertools
import random
import stat

import httpx
import pytest
from atproto import Client
from atproto_client.request import Request
from PIL import Image
from pydantic import SecretStr

from publishers.bluesky import MAX_BLOB_BYTES, BlueskyPublisher, part_key
from publishers.outbox import Outbox
from publishers.protocol import Post, RetryableError

ARTICLE = "https://dev.to/someone/rust-async-in-practice-4k2j"
_n = itertools.count(1)


def _noise_png(side: int = 1400) -> bytes:
    rnd = random.Random(7)
    img = Image.frombytes("RGB", (side, side), bytes(rnd.getrandbits(8) for _ in range(side * side * 3)))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


BIG_PNG = _noise_png()


def _article_site(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/img/cover.png":
        return httpx.Response(200, content=BIG_PNG, headers={"content-type": "image/png"})
    html = (
        "<html><head><title>fallback</title>"
        '<meta property="og:title" content="Rust async in practice">'
        '<meta property="og:description" content="Futures, pinning and executors.">'
        '<meta property="og:image" content="/img/cover.png"></head><body>hi</body></html>'
    )
    return httpx.Response(200, text=html, headers={"content-type": "text/html"})


class FaultyTransport(httpx.HTTPTransport):
    """Counts XRPC calls; can lose the answer of a call the PDS already processed."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.faults: list[str] = []  # for successive createRecord calls: pass | reset | timeout | 503 | crash

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        self.calls.append(method)
        if method == "com.atproto.repo.createRecord" and self.faults:
            fault = self.faults.pop(0)
            if fault == "pass":
                return super().handle_request(request)
            if fault == "503":  # refused before anything was stored
                return httpx.Response(503, json={"error": "Unavailable", "message": "try later"})
            response = super().handle_request(request)
            response.read()  # the PDS stored the record; now lose the answer
            if fault == "reset":
                raise httpx.RemoteProtocolError("connection reset after send", request=request)
            if fault == "timeout":
                raise httpx.ReadTimeout("answer never came", request=request)
            raise RuntimeError("process crashed after send")
        return super().handle_request(request)


@pytest.fixture
def account(pds):
    n = next(_n)
    return pds.create_account(f"writer{n}.test", f"pw-{n}-secret")


def _publisher(pds, account, tmp_path, transport: FaultyTransport | None = None) -> tuple[BlueskyPublisher, FaultyTransport]:
    transport = transport or FaultyTransport()
    client = Client(base_url=pds.url, request=Request(transport=transport))
    pub = BlueskyPublisher(
        client,
        handle=account.handle,
        password=SecretStr(account.password),
        session_path=tmp_path / "bluesky.session",
        http=httpx.AsyncClient(transport=httpx.MockTransport(_article_site)),
    )
    return pub, transport


def _reader(pds, account) -> Client:
    c = Client(base_url=pds.url)
    c.login(account.handle, account.password, fetch_bsky_profile=False)
    return c


def _records(pds, account) -> list:
    c = _reader(pds, account)
    return c.com.atproto.repo.list_records({"repo": account.did, "collection": "app.bsky.feed.post", "limit": 100}).records


def _span(text: str, facet) -> str:
    return text.encode("utf-8")[facet.index.byte_start : facet.index.byte_end].decode("utf-8")


@pytest.fixture
def outbox(tmp_path) -> Outbox:
    from kernel.db import make_engine

    async def no_sleep(_s: float) -> None:
        return None

    box = Outbox(make_engine(f"sqlite:///{tmp_path / 'outbox.db'}"), sleep=no_sleep)
    box.migrate()
    return box


async def test_post_with_facets_and_link_card_with_thumbnail_blob(pds, account, tmp_path, outbox):
    pub, _ = _publisher(pds, account, tmp_path)
    text = "Ünïcode 👩‍👩‍👧 日本語 e\u0301 notes on #rust futures, see also https://example.test/more."
    post = Post(key="task-1:post", title="Rust async", body_markdown="b", bsky_text=text, link_url=ARTICLE)
    published = await outbox.deliver(pub, post)
    assert published.remote_id.startswith(f"at://{account.did}/app.bsky.feed.post/")
    assert published.extra["rkey"] == part_key(post.key, 0)

    rec = _reader(pds, account).com.atproto.repo.get_record(
        {"repo": account.did, "collection": "app.bsky.feed.post", "rkey": published.extra["rkey"]}
    ).value
    spans = {_span(rec.text, f): f.features[0] for f in rec.facets}
    assert spans["#rust"].tag == "rust"
    assert "https://example.test/more" not in spans  # not the post's article: plain text, never a facet
    shown = [s for s in spans if s.startswith("dev.to/")]
    assert len(shown) == 1 and spans[shown[0]].uri == ARTICLE
    ext = rec.embed.external
    assert ext.uri == ARTICLE and ext.title == "Rust async in practice" and ext.description.startswith("Futures")
    assert len(BIG_PNG) > MAX_BLOB_BYTES and 0 < ext.thumb.size <= MAX_BLOB_BYTES and ext.thumb.mime_type == "image/jpeg"
    blob = httpx.get(f"{pds.url}/xrpc/com.atproto.sync.getBlob", params={"did": account.did, "cid": str(ext.thumb.cid)})
    assert blob.status_code == 200 and len(blob.content) == ext.thumb.size


async def test_long_text_becomes_a_thread_with_root_and_parent_refs(pds, account, tmp_path, outbox):
    pub, _ = _publisher(pds, account, tmp_path)
    text = " ".join(f"Sentence {i} about 日本語 and emoji 🚀." for i in range(40))
    post = Post(key="task-2:post", title="Thread", body_markdown="b", bsky_text=text, link_url=ARTICLE)
    published = await outbox.deliver(pub, post)
    uris = published.extra["thread"].split()
    assert len(uris) >= 3
    client = _reader(pds, account)
    recs = [client.com.atproto.repo.get_record({"repo": account.did, "collection": "app.bsky.feed.post", "rkey": u.rsplit("/", 1)[-1]}) for u in uris]
    assert recs[0].value.reply is None and recs[0].value.embed is not None
    for i, r in enumerate(recs[1:], 1):
        assert r.value.reply.root.uri == recs[0].uri and r.value.reply.root.cid == recs[0].cid
        assert r.value.reply.parent.uri == recs[i - 1].uri and r.value.reply.parent.cid == recs[i - 1].cid
        assert r.value.text.endswith(f" {i + 1}/{len(recs)}")


async def test_session_is_persisted_0600_and_reused_after_a_restart(pds, account, tmp_path, outbox):
    pub, transport = _publisher(pds, account, tmp_path)
    await outbox.deliver(pub, Post(key="s-1", title="t", body_markdown="b", bsky_text="first"))
    session_file = tmp_path / "bluesky.session"
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert account.password not in session_file.read_text()
    restarted, transport2 = _publisher(pds, account, tmp_path)  # a new process: new client, same state dir
    await outbox.deliver(restarted, Post(key="s-2", title="t", body_markdown="b", bsky_text="second"))
    creates = (transport.calls + transport2.calls).count("com.atproto.server.createSession")
    assert creates == 1 and restarted.session_creates == 0
    assert len(_records(pds, account)) == 2


@pytest.mark.parametrize("fault", ["reset", "timeout", "503", "crash"])
async def test_failure_around_create_ends_in_exactly_one_post(pds, account, tmp_path, outbox, fault):
    pub, transport = _publisher(pds, account, tmp_path)
    transport.faults = [fault]
    post = Post(key=f"fault-{fault}", title="t", body_markdown="b", bsky_text=f"survives a {fault}")
    if fault == "crash":
        with pytest.raises(RuntimeError):
            await outbox.deliver(pub, post)
        pub, _ = _publisher(pds, account, tmp_path)  # the restarted process
    published = await outbox.deliver(pub, post)
    again = await outbox.deliver(pub, post)
    assert again == published
    records = [r for r in _records(pds, account) if r.value.text == post.bsky_text]
    assert len(records) == 1 and records[0].uri == published.remote_id


async def test_thread_cut_short_by_a_crash_is_completed_without_duplicating_parts(pds, account, tmp_path, outbox):
    pub, transport = _publisher(pds, account, tmp_path)
    text = " ".join(f"Part of a long story number {i}." for i in range(30))
    post = Post(key="partial", title="t", body_markdown="b", bsky_text=text)
    transport.faults = ["pass", "crash"]  # the root goes through; the process dies after sending part 2

    with pytest.raises(RuntimeError):
        await outbox.deliver(pub, post)
    assert len(_records(pds, account)) == 2
    restarted, _ = _publisher(pds, account, tmp_path)
    published = await outbox.deliver(restarted, post)
    uris = published.extra["thread"].split()
    records = _records(pds, account)
    assert len(uris) >= 3 and sorted(r.uri for r in records) == sorted(uris)
    assert len({r.value.text for r in records}) == len(uris)


async def test_metrics_without_an_appview_are_reported_as_unknown(pds, account, tmp_path, outbox, caplog):
    pub, _ = _publisher(pds, account, tmp_path)
    published = await outbox.deliver(pub, Post(key="m-1", title="t", body_markdown="b", bsky_text="count me"))
    metrics = await pub.metrics([published])
    assert len(metrics) == 1 and metrics[0].remote_id == published.remote_id
    assert metrics[0].likes is None and metrics[0].reposts is None
    await pub.metrics([published])
    assert sum("no metrics" in r.getMessage() for r in caplog.records) == 1
