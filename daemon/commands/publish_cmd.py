"""`selfpub publish FILE.md [--to devto,bluesky,local] [--update]`: a hand-written post through the outbox.

The file is Markdown with optional YAML front matter (README, "Publishing a
file by hand"): title, tags, description, bsky_text, canonical_url, key. With
no title there, a first line `# Title` is the title (and is not repeated in
the body). A file is one post: its key is stable per path, so running the
command again publishes nothing twice. A file already published says so, with
where; when it was edited since, `--update` pushes the edit: Dev.to articles
are updated in place (PUT /api/articles/{id}), a local outbox file is
rewritten, and a Bluesky post, which cannot be edited, is left as it is and
the command says so (it never deletes and reposts behind the user's back).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from daemon.context import app_context, err_console

if TYPE_CHECKING:  # the publishers are imported when a post is published, not at every start of the CLI
    from publishers.dispatch import Dispatcher
    from publishers.outbox import OutboxRecord
    from publishers.protocol import Post, Published

console = Console(soft_wrap=True)
HEADING = re.compile(r"^#[ \t]+(?P<title>.+?)(?:[ \t]+#+)?[ \t]*$")  # an ATX level-1 heading


def title_line(text: str) -> tuple[str, str]:
    """(title, the rest) when the text's first non-blank line is `# Title`, else ("", text)."""
    stripped = text.lstrip("\n")
    first, _, rest = stripped.partition("\n")
    m = HEADING.match(first.strip())
    if not m:
        return "", text
    return m["title"].strip(), rest.lstrip("\n")


def post_from_file(path: Path) -> Post:
    """A Post from a Markdown file with front matter (title, tags, description, bsky_text, canonical_url, key)."""
    import frontmatter

    from publishers.protocol import Post

    doc = frontmatter.load(path)
    meta = doc.metadata
    title = str(meta.get("title") or "").strip()
    body = doc.content
    if not title:
        title, body = title_line(body)
    if not title:
        raise typer.BadParameter(f"{path}: give it a title: `title:` in the front matter, or a first line `# Title`")
    tags = meta.get("tags") or ()
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    description = str(meta.get("description") or "")
    # the key is stable per file, so running the command twice publishes once
    key = str(meta.get("key") or "file:" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24])
    return Post(
        key=key,
        title=title,
        body_markdown=body,
        bsky_text=str(meta.get("bsky_text") or description or title),
        tags=tuple(str(t) for t in tags),
        description=description,
        canonical_url=meta.get("canonical_url"),
    )


def _show(published: list[Published]) -> None:
    for p in published:
        uri = p.extra.get("uri")
        line = f"[bold]{p.platform}[/]: {escape(p.url)}"
        if uri and uri != p.url:
            line += f"  ({escape(uri)})"
        if not p.public:
            # a draft's URL opens only for its author: say so, and why nothing links to it
            line += "  (a draft: only you can open it, so no other post links to it; set publishers.devto.publish = true)"
        console.print(line, highlight=False)


def _published_before(channel: Dispatcher, post: Post) -> dict[str, OutboxRecord]:
    """platform -> its outbox record, for the platforms this post was already published on."""
    out = {}
    for publisher in channel.publishers:
        record = channel.outbox.get(post.key, publisher.name)
        if record is not None and record.published is not None:
            out[publisher.name] = record
    return out


def _edited_since(file: Path, records: dict[str, OutboxRecord]) -> bool:
    """Whether the file was written after its first platform published it."""
    times = [r.published_at for r in records.values() if r.published_at is not None]
    if not times:
        return False
    first = min(t if t.tzinfo else t.replace(tzinfo=timezone.utc) for t in times)
    return datetime.fromtimestamp(file.stat().st_mtime, timezone.utc) > first


def _rewrite_local(channel: Dispatcher, post: Post) -> Path:
    """Write the local outbox file of `post` again (atomically: a reader never sees half of it)."""
    from publishers.local import render

    path = channel.local.path_for(post.key)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render(post), encoding="utf-8")
    tmp.replace(path)
    return path


async def _update(channel: Dispatcher, post: Post, before: dict[str, OutboxRecord]) -> list[Published]:
    """Push an edited post where a post can be edited; say so where it cannot."""
    updated: list[Published] = []
    link = post.link_url
    if "devto" in before and channel.devto is not None:
        article = await channel.devto.update(before["devto"].published.remote_id, post)
        updated.append(article)
        if article.public and article.url:
            link = article.url
    if "local" in before and channel.local is not None:
        _rewrite_local(channel, replace(post, link_url=link))
        updated.append(before["local"].published)
    if "bluesky" in before:
        err_console.print(
            f"bluesky: a Bluesky post cannot be edited; left as it was: {escape(before['bluesky'].published.url)} "
            "(nothing was deleted or posted again)", highlight=False)
    return updated


def _waiting(platform: str, key: str, holder: str) -> None:
    err_console.print(f"{escape(platform)}: {escape(holder)} is publishing this post right now; waiting for it",
                      highlight=False)


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""

    @app.command("publish")
    def publish(
        ctx: typer.Context,
        file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="Markdown file with front matter."),
        to: str = typer.Option(None, "--to", help="Comma-separated platforms: devto,bluesky,local (default: the enabled ones)."),
        update: bool = typer.Option(False, "--update", help="Push an edited file where it was published (Dev.to: "
                                    "in place; a Bluesky post cannot be edited and is left as it is)."),
    ) -> None:
        """Publish a hand-written post exactly once (same outbox, limits and idempotency as the agents)."""
        from daemon.wiring_publishers import PublisherConfigError, build_channel, check_platforms
        from publishers.dispatch import DispatchPermanentError, DispatchRetryableError
        from publishers.protocol import PublishError, RetryableError

        app_ctx = app_context(ctx)
        post = post_from_file(file)
        platforms = [t.strip() for t in to.split(",") if t.strip()] if to else None
        try:
            # Refuse a bad --to before app_ctx.engine creates the state dir and database.
            check_platforms(app_ctx.settings, platforms)
            channel = build_channel(app_ctx.settings, app_ctx.engine, platforms=platforms, on_wait=_waiting)
        except PublisherConfigError as exc:
            err_console.print(f"[bold red]cannot publish:[/] {escape(str(exc))}")
            raise typer.Exit(2) from None

        before = _published_before(channel, post)
        edited = _edited_since(file, before)

        async def run() -> list[Published]:
            try:
                published = await channel.publish_all(post)
                if update and before:
                    updated = await _update(channel, post, before)
                    mine = {p.platform for p in updated}
                    published = [p for p in published if p.platform not in mine] + updated
                return published
            finally:
                await channel.aclose()

        try:
            published = asyncio.run(run())
        except (DispatchRetryableError, DispatchPermanentError) as exc:
            _show(exc.published)
            for e in exc.errors:
                kind = "will retry" if isinstance(e, RetryableError) else "failed"
                err_console.print(f"[bold red]{escape(e.platform)}[/] ({kind}, status {e.status}): {escape(e.message)}")
            raise typer.Exit(1) from None
        except PublishError as exc:  # the update of a published post
            err_console.print(f"[bold red]{escape(exc.platform)}[/] (update failed, status {exc.status}): "
                              f"{escape(exc.message)}")
            raise typer.Exit(1) from None
        _show(published)
        if before and not update:
            where = ", ".join(f"{name} ({r.published.url})" for name, r in before.items())
            err_console.print(f"{escape(str(file))} is already published: {escape(where)}", highlight=False)
            if edited:
                err_console.print(
                    "it was edited after it was published, and the edit is not live: run `selfpub publish "
                    f"{escape(str(file))} --update` to push it (Dev.to is updated in place; a Bluesky post cannot "
                    "be edited and stays as it is)", highlight=False)
                raise typer.Exit(1)
        elif update and before:
            console.print(f"updated: {', '.join(name for name in before if name != 'bluesky') or 'nothing'}",
                          highlight=False)
