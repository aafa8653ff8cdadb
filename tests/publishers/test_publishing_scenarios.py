"""Issue 11, scenarios 9-11: no duplicate article, no stranger's article taken for ours, no link to a draft.

9.  Two `selfpub publish FILE` processes at once (real OS processes, SQLite and PostgreSQL): the
    Dev.to stand-in holds the first create open until the second process is in flight too (it
    says it waits, or it sends a create of its own); then exactly one article exists on the
    stand-in and exactly one record on the real local PDS.
10. A create that timed out before Dev.to stored anything, with an older article of the same
    title (and canonical URL) on the account: the look-up must not take it for ours.
11. With `publish = false` (drafts), the Bluesky post must not link to the draft's URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from kernel.db import make_engine
from config.settings import DevtoSettings
from publishers.devto import DevtoPublisher
from publishers.dispatch import Dispatcher
from publishers.outbox import Outbox
from publishers.protocol import Post
from publishers.ratelimit import Limiter, TokenBucket
from tests.e2e.standins import DevtoStandIn
from tests.publishers.fakes import ScriptedPublisher
from tests.publishers.forem import BASE, FakeForem, ForemSpec

REPO = Path(__file__).resolve().parents[2]
API_KEY = "scenario-key"
ARTICLE = """---
title: Two terminals, one post
tags: [python]
description: Published from two shells at once.
bsky_text: "Two terminals, one post"
---
# Hello

Body.
"""


async def _no_sleep(_s: float) -> None:
    return None


def _devto(transport: httpx.BaseTransport, **settings) -> DevtoPublisher:
    free = lambda name: Limiter("devto", [TokenBucket(name, 1000, 1.0)], _no_sleep)  # noqa: E731
    return DevtoPublisher(httpx.AsyncClient(transport=transport), DevtoSettings(enabled=True, base_url=BASE, **settings),
                          SecretStr("test-key"), writes=free("w"), articles=free("a"))


@pytest.fixture
def outbox(tmp_path) -> Outbox:
    box = Outbox(make_engine(f"sqlite:///{tmp_path / 'o.db'}"), sleep=_no_sleep)
    box.migrate()
    return box


# -- 10 ---------------------------------------------------------------------------------------------


async def test_scenario_10_lookup_never_takes_an_older_article_with_the_same_title(outbox):
    forem = FakeForem(ForemSpec())
    older = Post(key="task-old:post", title="Weekly notes", body_markdown="Last week.", bsky_text="s",
                 canonical_url="https://blog.example/weekly")
    forem._create({"article": {"title": older.title, "body_markdown": older.body_markdown,
                               "canonical_url": older.canonical_url}})  # written by hand: no marker of ours
    timeouts = {"n": 0}

    def transport(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and timeouts["n"] == 0:
            timeouts["n"] += 1  # the first create times out before Dev.to stored anything
            raise httpx.ReadTimeout("no answer", request=request)
        return forem.handle(request)

    adapter = _devto(httpx.MockTransport(transport))
    new = Post(key="task-new:post", title=older.title, body_markdown="This week.", bsky_text="s",
               canonical_url=older.canonical_url)
    assert await adapter.find_existing(new.key, new) is None
    published = await outbox.deliver(adapter, new)
    assert len(forem.articles) == 2
    assert published.remote_id == str(forem.articles[1]["id"]) and "This week." in forem.articles[1]["body_markdown"]


# -- 11 ---------------------------------------------------------------------------------------------


async def test_scenario_11_bluesky_never_links_to_a_devto_draft(outbox):
    forem = FakeForem(ForemSpec())
    bsky = ScriptedPublisher("bluesky")
    channel = Dispatcher(outbox, devto=_devto(forem.transport()), bluesky=bsky)  # publish = false: drafts
    post = Post(key="task-d:post", title="Draft", body_markdown="b", bsky_text="Out now")
    article, _ = await channel.publish_all(post)
    assert forem.articles[0]["published"] is False
    assert bsky.publish_calls[0].link_url is None  # no card, no facet: a draft is a 404 for readers
    assert not article.public

    named = Post(key="task-e:post", title="Draft 2", body_markdown="b", bsky_text="Out now",
                 canonical_url="https://blog.example/original")
    await channel.publish_all(named)
    assert bsky.publish_calls[1].link_url == "https://blog.example/original"  # the public copy the author named


async def test_a_public_devto_article_is_linked(outbox):
    forem = FakeForem(ForemSpec())
    bsky = ScriptedPublisher("bluesky")
    channel = Dispatcher(outbox, devto=_devto(forem.transport(), publish=True), bluesky=bsky)
    article, _ = await channel.publish_all(Post(key="task-p:post", title="Live", body_markdown="b", bsky_text="Out now"))
    assert article.public and bsky.publish_calls[0].link_url == article.url == forem.articles[0]["url"]


# -- 9 ----------------------------------------------------------------------------------------------


class HeldCreate(DevtoStandIn):
    """The stand-in, holding the first create open until `release` (so two publishers are in flight at once)."""

    def __init__(self) -> None:
        super().__init__(API_KEY, write_interval=0.0)
        self.first_create = threading.Event()
        self.release = threading.Event()
        self._creates = 0
        self._count = threading.Lock()

    def handle(self, request: httpx.Request):  # noqa: ANN201
        if request.method == "POST" and request.url.path == "/api/articles":
            with self._count:
                self._creates += 1
                first = self._creates == 1
            if first:
                self.first_create.set()
                self.release.wait(timeout=90)
            else:
                self.release.set()  # the other process sends a create of its own: let both through
        return super().handle(request)


def _selfpub(cfg: Path, post: Path, env: dict[str, str]) -> subprocess.Popen:
    # `python -m daemon.cli` from this checkout (PYTHONPATH), so the test runs the code beside it
    full = {k: v for k, v in os.environ.items() if not k.startswith("SELFPUB_")}
    full.update(env, PYTHONPATH=str(REPO), NO_COLOR="1", COLUMNS="200", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "daemon.cli", "--config", str(cfg), "publish", str(post)],
                            cwd=cfg.parent, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _release_when_second_is_in_flight(proc: subprocess.Popen, stand_in: HeldCreate, seen: list[str]) -> None:
    for line in proc.stderr:  # type: ignore[union-attr]
        seen.append(line)
        if "waiting for it" in line:
            stand_in.release.set()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_scenario_9_two_publish_processes_at_once_make_one_article_and_one_bluesky_post(tmp_path, request, db):
    from tests.peers import pds as peer

    if not peer.installed():
        pytest.skip("the local PDS peer is not installed (make peers): Bluesky records cannot be counted")
    pds = request.getfixturevalue("pds")
    account = pds.create_account(f"twice-{db}.test", f"pw-{db}-twice")
    key_file = tmp_path / "devto.key"
    key_file.write_text(API_KEY)
    key_file.chmod(0o600)
    database = f'[database]\nurl = "{request.getfixturevalue("pg_url")}"\n' if db == "postgres" else ""
    stand_in = HeldCreate()
    with stand_in.running():
        cfg = tmp_path / "selfpub.toml"
        cfg.write_text(
            f'state_dir = "{tmp_path / "state"}"\n{database}'
            f'[publishers.devto]\nenabled = true\nbase_url = "{stand_in.url}"\napi_key_file = "{key_file}"\npublish = true\n'
            f'[publishers.bluesky]\nenabled = true\nbase_url = "{pds.url}"\nhandle = "{account.handle}"\n'
            'app_password_env = "TEST_BSKY_PASSWORD"\n[publishers.local]\nenabled = false\n'
        )
        post = tmp_path / "post.md"
        post.write_text(ARTICLE)
        env = {"TEST_BSKY_PASSWORD": account.password}
        first = _selfpub(cfg, post, env)
        assert stand_in.first_create.wait(timeout=90), "the first process never sent its create"
        second = _selfpub(cfg, post, env)
        seen: list[str] = []
        watcher = threading.Thread(target=_release_when_second_is_in_flight, args=(second, stand_in, seen), daemon=True)
        watcher.start()
        out_first, err_first = first.communicate(timeout=180)
        out_second = second.stdout.read()  # type: ignore[union-attr]
        second.wait(timeout=60)
        watcher.join(timeout=10)
    err_second = "".join(seen)
    assert stand_in.errors == [] and stand_in.server_errors == []
    assert len(stand_in.articles) == 1, [a["id"] for a in stand_in.articles]
    assert first.returncode == 0, err_first
    assert second.returncode == 0, err_second
    assert "waiting for it" in err_second  # the second one said why it paused
    url = stand_in.articles[0]["url"]
    assert url in out_first and url in out_second
    from atproto import Client

    reader = Client(base_url=pds.url)
    reader.login(account.handle, account.password, fetch_bsky_profile=False)
    records = reader.com.atproto.repo.list_records({"repo": account.did, "collection": "app.bsky.feed.post"}).records
    assert len(records) == 1
    assert records[0].value.embed.external.uri == url  # the one article, public: linked
