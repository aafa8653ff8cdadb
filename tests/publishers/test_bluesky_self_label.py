"""Bluesky automated-account label on a real local PDS: every post record and the profile carry the "bot"
self-label when publishers.bluesky.automated_label is on, and neither does when it is off."""

from __future__ import annotations

import httpx
from atproto import Client
from pydantic import SecretStr

from agents.text import BSKY_MAX_GRAPHEMES, graphemes
from publishers.bluesky import BOT_LABEL, PROFILE, SELF_LABELS, BlueskyPublisher
from publishers.protocol import Post
from tests.fakes.scripted_llm import sample_draft

ARTICLE = "https://dev.to/someone/rust-2026-edition-1a2b"


def _publisher(pds, account, tmp_path, *, label: bool) -> BlueskyPublisher:
    return BlueskyPublisher(
        Client(base_url=pds.url), handle=account.handle, password=SecretStr(account.password),
        session_path=tmp_path / f"bluesky-{label}.session", automated_label=label,
        http=httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404))),
    )


def _get(pds, account, collection: str, rkey: str) -> dict:
    """A record read back over plain XRPC, independently of the publisher and the SDK's models."""
    resp = httpx.get(f"{pds.url}/xrpc/com.atproto.repo.getRecord",
                     params={"repo": account.did, "collection": collection, "rkey": rkey}, timeout=30)
    resp.raise_for_status()
    return resp.json()["value"]


def _vals(record: dict) -> list[str]:
    """The self-label values of a record."""
    return [v["val"] for v in record.get("labels", {}).get("values", [])]


def _post(key: str) -> Post:
    draft = sample_draft()  # the writer's own Bluesky text: whole sentences, hashtags, the AI disclosure
    return Post(key=key, title=draft.title, body_markdown=draft.body_markdown, bsky_text=draft.bsky_text,
                link_url=ARTICLE, tags=draft.tags)


async def test_post_records_and_the_profile_carry_the_bot_self_label(pds, tmp_path):
    account = pds.create_account("labelled-bot.test", "pw-labelled-secret")
    pub = _publisher(pds, account, tmp_path, label=True)
    first = await pub.publish(_post("label-1:post"))
    second = await pub.publish(_post("label-2:post"))
    for published in (first, second):
        rec = _get(pds, account, "app.bsky.feed.post", published.remote_id.rsplit("/", 1)[-1])
        assert rec["labels"]["$type"] == SELF_LABELS and _vals(rec) == [BOT_LABEL]
        assert rec["text"].startswith(sample_draft().bsky_text) and graphemes(rec["text"]) <= BSKY_MAX_GRAPHEMES
        assert "Written by an AI agent." in rec["text"]
    profile = _get(pds, account, PROFILE, "self")
    assert _vals(profile) == [BOT_LABEL]


async def test_the_profile_keeps_its_fields_and_the_label_is_not_added_twice(pds, tmp_path):
    account = pds.create_account("named-bot.test", "pw-named-secret")
    owner = Client(base_url=pds.url)
    owner.login(account.handle, account.password, fetch_bsky_profile=False)
    owner.com.atproto.repo.put_record({"repo": account.did, "collection": PROFILE, "rkey": "self", "record": {
        "$type": PROFILE, "displayName": "Rust notes", "description": "Weekly Rust news."}})
    await _publisher(pds, account, tmp_path, label=True).publish(_post("named-1:post"))
    await _publisher(pds, account, tmp_path, label=True).publish(_post("named-2:post"))  # a restart: read again
    profile = _get(pds, account, PROFILE, "self")
    assert profile["displayName"] == "Rust notes" and profile["description"] == "Weekly Rust news."
    assert _vals(profile) == [BOT_LABEL]


async def test_without_the_setting_nothing_is_labelled(pds, tmp_path):
    account = pds.create_account("plain-human.test", "pw-plain-secret")
    published = await _publisher(pds, account, tmp_path, label=False).publish(_post("plain-1:post"))
    rec = _get(pds, account, "app.bsky.feed.post", published.remote_id.rsplit("/", 1)[-1])
    assert "labels" not in rec
    resp = httpx.get(f"{pds.url}/xrpc/com.atproto.repo.getRecord",
                     params={"repo": account.did, "collection": PROFILE, "rkey": "self"}, timeout=30)
    assert resp.status_code == 400 or "labels" not in resp.json()["value"]
