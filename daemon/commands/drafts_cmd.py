"""`selfpub drafts list|show|approve|reject`: the approval-mode queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from agents.task_rows import EXPIRED, FAILED, HELD, REJECTED, STATUSES, list_lines
from kernel.money import format_credits
from daemon.context import app_context

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported by the commands that use it; `drafts list` reads without it
    from agents.tasks import TaskStore

console = Console()
drafts_app = typer.Typer(help="Drafts held for approval (approval = manual | risky).", no_args_is_help=True)


def _store(ctx: typer.Context, *, read_only: bool = False) -> TaskStore:
    from agents.tasks import TaskStore

    app = app_context(ctx).read_only() if read_only else app_context(ctx)
    return TaskStore(app.engine, persona=app.settings.persona)


@drafts_app.command("list")
def list_drafts(
    ctx: typer.Context,
    status: list[str] = typer.Option([HELD], "--status", "-s", help=f"Statuses to show ({', '.join(STATUSES)})."),
    all_: bool = typer.Option(False, "--all", help="Every status."),
    limit: int = typer.Option(50, "--limit"),
) -> None:
    """List drafts (held ones by default); a rejected, failed or expired one with why."""
    app = app_context(ctx).read_only(plain=True)  # one read on the raw cursor: TaskStore.list's own
    tasks = list_lines(app.engine, app.settings.persona, None if all_ else status, limit=limit)
    for t in tasks:
        title = t.title[:70]
        score = "-" if t.score is None else str(t.score)
        until = f" until {t.held_until:%Y-%m-%d %H:%M}" if t.held_until and t.status == HELD else ""
        console.print(f"{t.id[:12]}  {t.status:<10} score {score:>2}  {format_credits(t.cost)} cr  {escape(title)}{until}",
                      highlight=False, soft_wrap=True)
        if t.status in (REJECTED, FAILED, EXPIRED) and t.reasons:
            console.print(f"    why: {escape(t.reasons[-1][:500])}", highlight=False, soft_wrap=True)
    if not tasks:
        console.print("no drafts")


@drafts_app.command("show")
def show(ctx: typer.Context, task_id: str = typer.Argument(..., help="Task id or a unique prefix (6+ characters).")) -> None:
    """Show one draft with its brief, reviews and history."""
    from agents.tasks import TaskError

    try:
        t = _store(ctx, read_only=True).get(task_id)
    except TaskError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    console.print(f"[bold]task {t.id}[/] {t.status}  cost {format_credits(t.cost)} credits  novelty {t.novelty:.2f}")
    console.print(f"plan: {escape(t.explanation)}", highlight=False)
    for it in t.messages.items:
        console.print(f"item: {escape(it.title)} <{escape(it.url)}>", highlight=False)
    draft = t.messages.draft
    if draft:
        console.print(f"\n[bold]{escape(draft.title)}[/]  tags: {', '.join(draft.tags)}")
        console.print(escape(draft.body_markdown), highlight=False)
        console.print(f"\nBluesky: {escape(draft.bsky_text)}", highlight=False)
    for i, r in enumerate(t.messages.reviews, 1):
        console.print(f"review {i}: score {r.score} approved={r.approved} problems={list(r.problems)}", highlight=False)
    for reason in t.reasons:
        console.print(f"  - {escape(reason)}", highlight=False)


@drafts_app.command("approve")
def approve(ctx: typer.Context, task_id: str = typer.Argument(...)) -> None:
    """Approve a held draft: it publishes on the next cycle."""
    from agents.tasks import TaskError

    try:
        t = _store(ctx).approve(task_id)
    except TaskError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    console.print(f"approved {t.id}: publishes on the next cycle")


@drafts_app.command("reject")
def reject(
    ctx: typer.Context,
    task_id: str = typer.Argument(...),
    reason: str = typer.Option(None, "--reason", help="Why (stored with the task)."),
) -> None:
    """Reject a held draft."""
    from agents.tasks import TaskError

    try:
        t = _store(ctx).reject(task_id, reason)
    except TaskError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    console.print(f"rejected {t.id}")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    app.add_typer(drafts_app, name="drafts")
