"""A minimal in-memory atproto Client for fast BlueskyPublisher unit tests (records and blobs kept in lists).

The real PDS tests (test_bluesky_pds.py) cover the wire; this fake serves tests about what goes into a
record (facets, link card), where a PDS would add start-up time and nothing to check.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from atproto_client.client.session import SessionEvent

DID = "did:plc:fakefakefakefake"


class FakeAtproto:
    """Accepts login, createRecord, getRecord and uploadBlob; remembers records and uploaded blobs."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.blobs: list[bytes] = []
        self._callback: Any = None
        repo = SimpleNamespace(create_record=self._create, get_record=self._get, upload_blob=self._upload)
        self.com = SimpleNamespace(atproto=SimpleNamespace(repo=repo))

    def on_session_change(self, callback: Any) -> None:
        self._callback = callback

    def login(self, *args: Any, **kwargs: Any) -> None:
        self._callback(SessionEvent.CREATE, SimpleNamespace(did=DID, encode=lambda: "session"))

    def _create(self, data: dict) -> SimpleNamespace:
        self.records.append(data["record"])
        return SimpleNamespace(uri=f"at://{DID}/app.bsky.feed.post/{data['rkey']}", cid=f"cid{len(self.records)}")

    def _get(self, params: dict) -> SimpleNamespace:
        raise AssertionError("getRecord is not expected in these tests")

    def _upload(self, data: bytes) -> SimpleNamespace:
        self.blobs.append(data)
        return SimpleNamespace(blob=SimpleNamespace(cid=f"bafy{len(self.blobs)}", mime_type="image/jpeg", size=len(data)))
