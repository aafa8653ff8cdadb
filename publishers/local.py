"""The local publisher: each post as a Markdown file with YAML front matter in a folder.

The default when no account is configured (default folder <state_dir>/outbox).
The file name comes from the idempotency key only, so the same key always
means the same file and never a second one. Files are written atomically
(temporary file + rename).

Errors: PermanentError when the folder cannot be written (OSError).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from publishers.protocol import Metrics, PermanentError, Post, Published

PLATFORM = "local"


def file_name(key: str) -> str:
    """The file name of the post with idempotency key `key`."""
    slug = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:60] or "post"
    return f"{slug}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:10]}.md"


def render(post: Post) -> str:
    """The Markdown file of a post: YAML front matter, then the body."""
    meta = {
        "title": post.title,
        "key": post.key,
        "tags": list(post.tags),
        "description": post.description,
        "bsky_text": post.bsky_text,
    }
    if post.canonical_url:
        meta["canonical_url"] = post.canonical_url
    if post.link_url:
        meta["link_url"] = post.link_url
    if post.task_id:
        meta["task_id"] = post.task_id
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    return f"---\n{front}---\n\n{post.body_markdown.rstrip()}\n"


class LocalPublisher:
    """Writes posts into `directory`; idempotent by key."""

    name = PLATFORM

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def path_for(self, key: str) -> Path:
        """Where the post with this key is (or would be) written."""
        return self.directory / file_name(key)

    def _published(self, path: Path) -> Published:
        return Published(PLATFORM, path.name, path.resolve().as_uri(), {"path": str(path)})

    async def publish(self, post: Post) -> Published:
        """Write the file unless it exists already."""
        path = self.path_for(post.key)
        if path.exists():
            return self._published(path)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(render(post), encoding="utf-8")
            # link() fails if the file appeared meanwhile: never two writers of one key
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise PermanentError(PLATFORM, f"cannot write {path}: {exc.strerror}") from exc
        return self._published(path)

    async def find_existing(self, idempotency_key: str, post: Post) -> Published | None:
        """The file of this key, if it was written."""
        path = self.path_for(idempotency_key)
        return self._published(path) if path.exists() else None

    async def metrics(self, published: Sequence[Published]) -> list[Metrics]:
        """A folder has no readers: every counter is unknown."""
        return [Metrics(PLATFORM, p.remote_id) for p in published]
