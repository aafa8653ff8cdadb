"""`selfpub publish FILE.md [--to devto,bluesky,local]`: a hand-written post through the outbox."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from daemon.context import app_context, err_console

if TYPE_CHECKING:  # the publishers are imported when a post is published, not at every start of the CLI
    from publishers.protocol import Post, Published

console = Console(soft_wrap=True)


def post_from_file(path: Path) -> Post:
    """A Post from a Markdown file with front matter (title, tags, description, bsky_text, canonical_url, key)."""
    import frontmatter

    from publishers.protocol import Post

    doc = frontmatter.load(path)
    meta = doc.metadata
    title = str(meta.get("title") or "").strip()
    if not title:
        raise typer.BadParameter(f"{path}: front matter needs a title")
    tags = meta.get("tags") or ()
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    description = str(meta.get("description") or "")
    # the key is stable per file, so running the command twice publishes once
    key = str(meta.get("key") or "file:" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24])
    return Post(
        key=key,
        title=title,
        body_markdown=doc.content,
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
    ) -> None:
        """Publish a hand-written post exactly once (same outbox, limits and idempotency as the agents)."""
        from daemon.wiring_publishers import PublisherConfigError, build_channel, check_platforms
        from publishers.dispatch import DispatchPermanentError, DispatchRetryableError
        from publishers.protocol import RetryableError

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

        async def run() -> list[Published]:
            try:
                return await channel.publish_all(post)
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
        _show(published)
