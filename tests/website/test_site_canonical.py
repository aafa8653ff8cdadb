"""Dev.to's canonical_url and the Bluesky link point at the agent's site; slugs are stable, URL-safe and unique."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from config.settings import DevtoSettings, Settings
from daemon.wiring_publishers import build_channel
from kernel.db import make_engine
from publishers import slugs as slug_module
from publishers.dispatch import Dispatcher
from publishers.devto import DevtoPublisher
from publishers.outbox import Outbox
from publishers.protocol import Post
from publishers.ratelimit import Limiter, TokenBucket
from publishers.slugs import SlugStore, derive, is_slug
from tests.publishers.fakes import ScriptedPublisher
from tests.publishers.forem import BASE, FakeForem, ForemSpec

SITE = "https://blog.example.test/notes"
POST = Post(key="selfpub-t42", title="Rust 1.80: LazyCell & more!", body_markdown="Body", bsky_text="Out now",
            task_id="t42")


async def _no_sleep(_s: float) -> None:
    return None


def _devto(forem: FakeForem, **settings) -> DevtoPublisher:
    free = lambda name: Limiter("devto", [TokenBucket(name, 1000, 1.0)], _no_sleep)  # noqa: E731
    return DevtoPublisher(httpx.AsyncClient(transport=forem.transport()),
                          DevtoSettings(enabled=True, base_url=BASE, **settings), SecretStr("test-key"),
                          writes=free("w"), articles=free("a"))


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'o.db'}")
    box = Outbox(eng, sleep=_no_sleep)
    box.migrate()
    yield eng
    eng.dispose()


async def test_devto_request_carries_the_site_copy_as_canonical_url_and_bluesky_links_to_it(engine):
    forem, bsky = FakeForem(ForemSpec()), ScriptedPublisher("bluesky")
    slugs = SlugStore(engine)
    channel = Dispatcher(Outbox(engine, sleep=_no_sleep), devto=_devto(forem), bluesky=bsky, slugs=slugs,
                         site_url=SITE + "/")
    await channel.publish_all(POST)  # Dev.to makes a draft (publish = false): the site copy is public anyway
    slug = slugs.slug_of(POST.key)
    assert slug == "rust-1-80-lazycell-more-" + derive(POST.key, POST.title).rsplit("-", 1)[1]
    (create,) = [r for r in forem.requests if r.method == "POST"]
    body = json.loads(create.content)["article"]
    assert body["canonical_url"] == f"{SITE}/a/{slug}"
    assert bsky.publish_calls[0].link_url == f"{SITE}/a/{slug}"


async def test_without_a_site_there_is_no_canonical_url_and_bluesky_links_to_the_public_devto_article(engine):
    forem, bsky = FakeForem(ForemSpec()), ScriptedPublisher("bluesky")
    channel = Dispatcher(Outbox(engine, sleep=_no_sleep), devto=_devto(forem, publish=True), bluesky=bsky,
                         slugs=SlugStore(engine))
    article, _ = await channel.publish_all(POST)
    body = json.loads(next(r for r in forem.requests if r.method == "POST").content)["article"]
    assert "canonical_url" not in body
    assert bsky.publish_calls[0].link_url == article.url
    assert SlugStore(engine).slug_of(POST.key) is not None  # taken anyway: a site enabled later serves it


async def test_an_original_the_author_named_stays_canonical(engine):
    forem = FakeForem(ForemSpec())
    channel = Dispatcher(Outbox(engine, sleep=_no_sleep), devto=_devto(forem), slugs=SlugStore(engine), site_url=SITE)
    named = Post(key="selfpub-t43", title="T", body_markdown="B", bsky_text="b", canonical_url="https://orig.example/x")
    await channel.publish_all(named)
    assert json.loads(forem.requests[0].content)["article"]["canonical_url"] == "https://orig.example/x"


@pytest.mark.parametrize(("enabled", "public_url", "expected"), [
    (True, SITE, SITE), (False, SITE, None), (True, None, None)])
def test_the_channel_links_to_the_site_only_when_it_is_served(tmp_path, enabled, public_url, expected):
    site = {"enabled": enabled, **({"public_url": public_url} if public_url else {})}
    settings_ = Settings(state_dir=tmp_path, site=site, publishers={"local": {"directory": tmp_path / "out"}})
    channel = build_channel(settings_, make_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    assert channel.site_url == expected and channel.slugs is not None


def test_a_slug_is_stored_once_and_never_recomputed(engine, monkeypatch):
    store = SlugStore(engine)
    first = store.assign("selfpub-a", "First title", "a")
    assert store.assign("selfpub-a", "A new title after a revision", "a") == first
    monkeypatch.setattr(slug_module, "derive", lambda key, title, hash_chars=8: "changed-rule")
    assert store.assign("selfpub-a", "First title", "a") == first
    assert store.lookup(first).key == "selfpub-a" and store.lookup("changed-rule") is None


def test_same_title_different_posts_get_different_slugs_and_a_clash_takes_the_longer_hash(engine, monkeypatch):
    store = SlugStore(engine)
    a, b = store.assign("selfpub-a", "Same", "a"), store.assign("selfpub-b", "Same", "b")
    assert a != b and a.startswith("same-") and b.startswith("same-")
    real = slug_module.derive
    monkeypatch.setattr(slug_module, "derive",
                        lambda key, title, hash_chars=8: "same-clash" if hash_chars == 8 else real(key, title, hash_chars=hash_chars))
    c = store.assign("selfpub-c", "Same", "c")
    d = store.assign("selfpub-d", "Same", "d")  # "same-clash" is c's: d gets the 16-character hash
    assert c == "same-clash" and d == real("selfpub-d", "Same", hash_chars=16)


@settings(max_examples=300, deadline=None)
@given(key=st.text(min_size=1, max_size=80), title=st.text(max_size=300))
def test_every_derived_slug_is_url_safe_and_bounded(key, title):
    slug = derive(key, title)
    assert is_slug(slug) and slug.isascii() and len(slug) <= 120
    assert slug.endswith(derive(key, "x")[-8:])  # the key's hash: unique per key
