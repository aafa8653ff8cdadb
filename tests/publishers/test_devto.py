"""Dev.to adapter: every request checked against the Forem OpenAPI spec; errors; lookups; metrics."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from config.settings import DevtoSettings
from publishers.devto import DevtoPublisher, clean_tags, marker
from publishers.outbox import Outbox
from publishers.protocol import PermanentError, Post, Published, RetryableError
from publishers.ratelimit import Limiter, TokenBucket
from tests.publishers.forem import BASE, FakeForem, ForemSpec, error

POST = Post(
    key="task-7:post",
    title="Rust async in practice",
    body_markdown="# Hello\n\nBody.",
    bsky_text="short",
    tags=("Rust", "async-io", "rust", "Web Dev", "more", "extra"),
    description="A summary",
    canonical_url=None,
)


@pytest.fixture(scope="module")
def spec() -> ForemSpec:
    return ForemSpec()


@pytest.fixture
def forem(spec) -> FakeForem:
    return FakeForem(spec)


async def _no_sleep(_s: float) -> None:
    return None


def _adapter(transport: httpx.BaseTransport, **settings) -> tuple[DevtoPublisher, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=transport)
    free = lambda name: Limiter("devto", [TokenBucket(name, 1000, 1.0)], _no_sleep)  # noqa: E731
    adapter = DevtoPublisher(
        client, DevtoSettings(enabled=True, base_url=BASE, **settings), SecretStr("test-key"), writes=free("w"), articles=free("a")
    )
    return adapter, client


async def test_create_article_request_matches_the_spec_and_config(forem):
    adapter, _ = _adapter(forem.transport(), series="Weekly")
    published = await adapter.publish(POST)
    (req,) = forem.requests
    body = json.loads(req.content)["article"]
    assert req.headers["api-key"] == "test-key"
    assert body["published"] is False  # drafts unless publish = true
    assert body["ai_disclosure_level"] == "fully_autonomous"
    assert body["tags"] == "rust, asyncio, webdev, more"
    assert body["series"] == "Weekly"
    assert marker(POST.key) in body["body_markdown"]
    assert published == Published("devto", "1001", f"{BASE}/someone/article-1", {"path": "/someone/article-1", "slug": "article-1", "published": "false"})
    assert forem.spec.validated == ["POST /api/articles"]


async def test_publish_true_and_disclosure_come_from_config(forem):
    adapter, _ = _adapter(forem.transport(), publish=True, ai_disclosure_level="some_ai")
    await adapter.publish(POST)
    body = json.loads(forem.requests[0].content)["article"]
    assert body["published"] is True and body["ai_disclosure_level"] == "some_ai"


def test_tags_are_at_most_four_lowercase_alphanumeric():
    assert clean_tags(["C++", "Go!", "go", "Machine Learning", "a", "b"]) == ["c", "go", "machinelearning", "a"]


def test_the_spec_validator_rejects_a_wrong_body(spec):
    bad = httpx.Request("POST", f"{BASE}/api/articles", headers={"api-key": "k"}, json={"article": {"title": 5}})
    with pytest.raises(Exception):
        spec.validate(bad)
    unauth = httpx.Request("POST", f"{BASE}/api/articles", json={"article": {"title": "x"}})
    with pytest.raises(Exception):
        spec.validate(unauth)


@pytest.mark.parametrize(
    ("response", "kind", "status"),
    [
        (error(401, "unauthorized"), PermanentError, 401),
        (error(422, "Title can't be blank"), PermanentError, 422),
        (error(429, "Rate limit reached, try again in 30 seconds", {"retry-after": "30"}), RetryableError, 429),
        (error(500, "boom"), RetryableError, 500),
    ],
)
async def test_error_statuses_are_classified_with_the_platform_message(forem, response, kind, status):
    forem.before = lambda _req: response
    adapter, _ = _adapter(forem.transport())
    with pytest.raises(kind) as info:
        await adapter.publish(POST)
    assert info.value.status == status and info.value.platform == "devto"
    assert info.value.message == response.json()["error"]
    if status == 429:
        assert info.value.retry_after == 30


async def test_timeouts_and_resets_are_retryable(spec):
    def handler(request: httpx.Request) -> httpx.Response:
        spec.validate(request)
        raise httpx.ReadTimeout("slow", request=request)

    adapter, _ = _adapter(httpx.MockTransport(handler))
    with pytest.raises(RetryableError) as info:
        await adapter.publish(POST)
    assert info.value.status is None


async def test_wrong_api_key_is_permanent(forem):
    forem.api_key = "other"
    adapter, _ = _adapter(forem.transport())
    with pytest.raises(PermanentError) as info:
        await adapter.publish(POST)
    assert info.value.status == 401


async def test_429_retry_after_blocks_the_adapter_writes(forem):
    forem.before = lambda _req: error(429, "slow down", {"retry-after": "12"})
    slept: list[float] = []
    now = [100.0]

    async def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    adapter = DevtoPublisher(
        httpx.AsyncClient(transport=forem.transport()),
        DevtoSettings(enabled=True, base_url=BASE),
        SecretStr("test-key"),
        writes=Limiter("devto", [TokenBucket("w", 1, 1.0, lambda: now[0])], sleep),
    )
    with pytest.raises(RetryableError):
        await adapter.publish(POST)
    forem.before = None
    await adapter.publish(POST)
    assert slept == [pytest.approx(12)]


async def test_find_existing_pages_through_me_all_by_marker(forem):
    adapter, _ = _adapter(forem.transport())
    for i in range(130):  # more than one page of 100
        forem._create({"article": {"title": f"other {i}", "body_markdown": "x"}})
    mine = await adapter.publish(POST)
    for i in range(5):
        forem._create({"article": {"title": f"later {i}", "body_markdown": "x"}})
    ours = next(a for a in forem.articles if a["title"] == POST.title)
    forem.articles.remove(ours)
    forem.articles.insert(0, ours)  # the oldest: on page 2 of the newest-first listing
    forem.requests.clear()
    found = await adapter.find_existing(POST.key, POST)
    assert found == mine
    assert [r.url.params["page"] for r in forem.requests] == ["1", "2"]
    assert all(r.url.path == "/api/articles/me/all" for r in forem.requests)
    assert await adapter.find_existing("never-posted", Post(key="never-posted", title="nope", body_markdown="", bsky_text="")) is None


async def test_metrics_read_page_views_reactions_and_comments(forem):
    adapter, _ = _adapter(forem.transport(), publish=True)
    a = await adapter.publish(POST)
    b = await adapter.publish(Post(key="k2", title="Second", body_markdown="b", bsky_text="s"))
    missing = Published("devto", "999999", "")
    metrics = await adapter.metrics([a, b, missing])
    assert [(m.remote_id, m.views, m.reactions, m.comments) for m in metrics] == [
        ("1001", 10, 1, 2),
        ("1002", 20, 2, 4),
        ("999999", None, None, None),
    ]
    assert {r.url.path for r in forem.requests if r.method == "GET"} == {"/api/articles/me"}


async def test_lost_response_after_create_ends_in_exactly_one_article(forem, engine):
    outbox = Outbox(engine, sleep=_no_sleep)
    outbox.migrate()
    lost = {"n": 0}

    def drop_first(article: dict) -> httpx.Response | None:
        if lost["n"] == 0:
            lost["n"] += 1
            raise httpx.RemoteProtocolError("connection reset after the article was stored")
        return None

    forem.after_create = drop_first
    adapter, _ = _adapter(forem.transport())
    published = await outbox.deliver(adapter, POST)
    assert len(forem.articles) == 1
    assert published.remote_id == str(forem.articles[0]["id"])
    assert [f"{r.method} {r.url.path}" for r in forem.requests] == ["POST /api/articles", "GET /api/articles/me/all"]
    assert await outbox.deliver(adapter, POST) == published
    assert len(forem.articles) == 1


async def test_500_after_create_then_timeout_still_one_article(forem, engine):
    outbox = Outbox(engine, sleep=_no_sleep)
    outbox.migrate()
    calls = {"n": 0}

    def flaky(article: dict) -> httpx.Response | None:
        calls["n"] += 1
        return error(500, "stored but failed to render") if calls["n"] == 1 else None

    forem.after_create = flaky
    adapter, _ = _adapter(forem.transport())
    await outbox.deliver(adapter, POST)
    await outbox.deliver(adapter, POST)
    assert len(forem.articles) == 1
