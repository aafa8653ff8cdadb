"""The operator's console: what the status page shows beyond the health cards, and its two writes.

    gather(service, now)      ConsoleData, read off the event loop: held drafts (critic score,
                              reasons, cost), drafts rejected or failed lately, spend per agent and
                              per model, cost per published article (ledger.reads.unit_economics, as
                              `selfpub ledger report`), the money story (ledger.reads.money_story: the points and
                              events `selfpub ledger plot` draws too), recent posts and failures
    next_cycle(service)       when the scheduler runs the cycle next (None: not scheduled)
    held_table, write_access, posts_table, failures_table, spend_tables, funding, events_list
                              the HTML of the console's sections (daemon/http.py's status_page lays them out)
    approve / reject          TaskStore.approve / TaskStore.reject: the code path of
                              `selfpub drafts approve|reject`, nothing of their own

Only approve and reject write; daemon/http.py lets them through daemon/csrf.py's Guard.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from agents.tasks import FAILED, HELD, REJECTED, Task, TaskStore
from kernel.money import format_credits
from ledger import reads
from ledger.reads import Event, Point, PostRow, UnitEconomics, event_label

if TYPE_CHECKING:
    from daemon.service import Service
    from daemon.status import ErrorRow

CHART_DAYS = 30
HELD_LIMIT = 50
RECENT_LIMIT = 10


@dataclass(frozen=True)
class ConsoleData:
    """One page's reads."""

    points: list[Point]
    events: list[Event]
    posts: list[PostRow]
    errors: list[ErrorRow]
    held: list[Task]
    turned_down: list[Task]  # rejected or failed drafts, newest first
    spend_by_agent: dict[str, int]
    spend_by_model: dict[str, int]
    interrupted: int
    per_article: UnitEconomics = UnitEconomics(0, 0, 0, 0)  # over the chart's CHART_DAYS


def gather(service: Service, now: datetime | None = None) -> ConsoleData:
    """Everything the console shows (blocking: run it in a thread)."""
    now = now or datetime.now(timezone.utc)
    s, journal, budget = service, service.journal, service.settings.budget
    points, events = reads.money_story(journal, since=now - timedelta(days=CHART_DAYS), until=now,
                                       min_balance=budget.min_balance, resume_balance=budget.resume_balance)
    tasks = TaskStore(s.engine, persona=s.settings.persona)
    return ConsoleData(
        points=points, events=events, posts=s.reader.recent_posts(), errors=s.reader.recent_errors(),
        held=tasks.list([HELD], limit=HELD_LIMIT), turned_down=tasks.list([REJECTED, FAILED], limit=RECENT_LIMIT),
        spend_by_agent=reads.spend_by_agent(journal), spend_by_model=reads.spend_by_model(journal),
        interrupted=s.reader.interrupted_count(),
        per_article=reads.unit_economics(journal, since=now - timedelta(days=CHART_DAYS), until=now,
                                         posts_of=s.reader.posts_of()),
    )


def next_cycle(service: Service) -> datetime | None:
    """When the scheduler runs the cycle job next (call on the event loop)."""
    job = service.scheduler.get_job("cycle") if service.scheduler.running else None
    return getattr(job, "next_run_time", None) if job is not None else None


def approve(service: Service, task_id: str) -> Task:
    """Approve a held draft, as `selfpub drafts approve` does."""
    return TaskStore(service.engine, persona=service.settings.persona).approve(task_id)


def reject(service: Service, task_id: str, reason: str | None) -> Task:
    """Reject a held draft, as `selfpub drafts reject --reason` does."""
    return TaskStore(service.engine, persona=service.settings.persona).reject(task_id, reason or None)


# -- HTML -------------------------------------------------------------------------------

e = html.escape


def _cr(ucr: int) -> str:
    return f"{format_credits(ucr)} cr"


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "-"


def _title(t: Task) -> str:
    draft = t.messages.draft
    return draft.title if draft else (t.item_url or t.id[:12])


def held_table(held: list[Task], csrf: str, unlocked: bool) -> str:
    """The held drafts with score, reasons and cost, and approve/reject forms when writes are unlocked."""
    if not held:
        return '<p id="held-none">no drafts are held for approval</p>'
    rows = []
    for t in held:
        title = _title(t)
        reasons = "".join(f"<li>{e(r)}</li>" for r in t.reasons) or "<li>-</li>"
        actions = "writes are locked"
        if unlocked:
            hidden = (f'<input type="hidden" name="csrf" value="{e(csrf)}">'
                      f'<input type="hidden" name="task" value="{e(t.id)}">')
            actions = (
                f'<form method="post" action="/drafts/approve">{hidden}'
                f'<button type="submit" class="approve" aria-label="approve {e(title)}">approve</button></form>'
                f'<form method="post" action="/drafts/reject">{hidden}'
                f'<input type="text" name="reason" maxlength="300" placeholder="reason (optional)" '
                f'aria-label="why reject {e(title)}">'
                f'<button type="submit" class="reject" aria-label="reject {e(title)}">reject</button></form>'
            )
        rows.append(
            f'<tr data-task="{e(t.id)}"><td>{e(title)}<br><small>{e(t.id[:12])}</small></td>'
            f'<td>{"-" if t.score is None else t.score}</td><td><ul>{reasons}</ul></td><td>{e(_cr(t.cost))}</td>'
            f"<td>{_when(t.held_until)}</td><td>{actions}</td></tr>"
        )
    return ('<table id="held"><caption>Drafts held for a person</caption><tr><th scope="col">draft</th>'
            '<th scope="col">critic score</th><th scope="col">reasons</th><th scope="col">cost</th>'
            '<th scope="col">held until</th><th scope="col">decision</th></tr>' + "".join(rows) + "</table>")


def write_access(writable: bool, unlocked: bool, csrf: str) -> str:
    """How writes stand: unlocked, an unlock form, or how to enable them."""
    if not writable:
        return ('<p id="read-only" class="note">This console is read-only. To approve or reject here, put a long '
                "random token in a file only selfpub can read (<code>chmod 600</code>), name it in "
                "<code>[http] console_token_file</code> (a relative name resolves in "
                "<code>$CREDENTIALS_DIRECTORY</code>, e.g. <code>LoadCredential=console-token:/etc/selfpub/"
                "console-token</code>) and reload. Meanwhile: <code>selfpub drafts approve ID</code> or "
                "<code>selfpub drafts reject ID --reason ...</code>.</p>")
    if unlocked:
        return '<p id="unlocked" class="note">Writes are unlocked in this browser (approve and reject below).</p>'
    return ('<form id="unlock" method="post" action="/unlock"><label for="token">Console token</label> '
            f'<input type="password" id="token" name="token" autocomplete="current-password" required>'
            f'<input type="hidden" name="csrf" value="{e(csrf)}"> <button type="submit">unlock writes</button></form>')


def posts_table(posts: list[PostRow]) -> str:
    """Recent posts: the title links to the live post; a local file or a draft says so instead."""
    rows = []
    for p in posts:
        name = e(p.title or p.post_id)
        shown = f'<a href="{e(p.url)}" rel="noopener noreferrer">{name}</a>' if p.url else \
            f'{name} <small>(not online: {"local file" if p.platform == "local" else "no public URL"})</small>'
        rows.append(f"<tr><td>{p.when:%Y-%m-%d %H:%M}</td><td>{e(p.platform)}</td><td>{shown}</td>"
                    f"<td>{format_credits(p.cost)}</td><td>{format_credits(p.earnings)}</td></tr>")
    body = "".join(rows) or '<tr><td colspan="5">no posts yet</td></tr>'
    return ('<table id="posts"><tr><th scope="col">when</th><th scope="col">platform</th><th scope="col">post</th>'
            f'<th scope="col">cost (cr)</th><th scope="col">earnings (cr)</th></tr>{body}</table>')


def failures_table(errors: list[ErrorRow], turned_down: list[Task]) -> str:
    """Failed job runs and drafts rejected or failed lately, each with its reason."""
    rows = [(r.when, r.job, r.outcome, r.detail) for r in errors]
    rows += [(t.updated_at or t.created_at, f"draft {_title(t)}", t.status,
              (t.reasons[-1] if t.reasons else "") + f" (cost {_cr(t.cost)})") for t in turned_down]
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    rows.sort(key=lambda r: _aware(r[0]) if r[0] else epoch, reverse=True)
    body = "".join(f'<tr><td>{_when(_aware(w) if w else None)}</td><td>{e(what)}</td><td class="err">{e(outcome)}</td>'
                   f"<td>{e(why)}</td></tr>" for w, what, outcome, why in rows[: 2 * RECENT_LIMIT])
    body = body or '<tr><td colspan="4">no failures</td></tr>'
    return ('<table id="failures"><tr><th scope="col">when</th><th scope="col">what</th><th scope="col">outcome</th>'
            f'<th scope="col">reason</th></tr>{body}</table>')


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def spend_tables(by_agent: dict[str, int], by_model: dict[str, int]) -> str:
    """Compute spend per agent and per model, all time."""
    def table(ident: str, what: str, values: dict[str, int]) -> str:
        body = "".join(f"<tr><td>{e(k)}</td><td>{e(_cr(v))}</td></tr>" for k, v in sorted(values.items())) or \
            '<tr><td colspan="2">nothing spent yet</td></tr>'
        return (f'<table id="{ident}"><tr><th scope="col">{what}</th><th scope="col">spend</th></tr>{body}</table>')
    return ('<div class="cards">' + table("spend-agent", "agent", by_agent) + table("spend-model", "model", by_model)
            + "</div>")


def funding(service: Service) -> str:
    """The pause thresholds and how to fund the agent in this wallet mode."""
    b, w = service.settings.budget, service.settings.wallet
    lines = [f"The loop pauses when available credits fall under <b>{e(_cr(b.min_balance))}</b> (min_balance) and "
             f"resumes at <b>{e(_cr(b.resume_balance))}</b> (resume_balance)"
             + (f"; {e(_cr(b.reserve))} is always held back (reserve)" if b.reserve else "") + "."]
    if w.mode == "ledger":
        lines.append("Fund it (ledger wallet): <code>selfpub ledger deposit 5 --memo \"top-up\"</code> on this host; "
                     "a paused daemon resumes within seconds.")
    elif w.mode == "evm":
        lines.append(f"Fund it: send credit tokens (token <code>{e(w.token_address or '?')}</code>, chain id "
                     f"{e(str(w.chain_id))}) to <code>{e(w.address or '?')}</code>; a tip counts once it is "
                     f"{w.confirmations} block(s) deep.")
    else:
        lines.append("Embedded chain (in-process, for trying selfpub out): nothing outside this process can send to "
                     "it; <code>selfpub demo</code> shows a tip arriving. Use <code>wallet.mode = \"evm\"</code> to "
                     "be funded on a real chain.")
    return '<div id="funding">' + "".join(f"<p>{line}</p>" for line in lines) + "</div>"


def events_list(events: list[Event]) -> str:
    """The chart's events as text: deposits, tips, pauses and resumes."""
    if not events:
        return '<p id="events">no deposits, tips, pauses or resumes in this range</p>'
    items = "".join(f'<li class="ev-{e(ev.kind)}">{_when(ev.at)}: {e(event_label(ev))}</li>' for ev in events)
    return f'<ul id="events">{items}</ul>'
