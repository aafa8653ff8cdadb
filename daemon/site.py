"""The site hook of `selfpub run`: the agent's own site on its own listener, when site.enabled.

    build_site(settings, engine, middleware=())
        backfill_slugs     published tasks from before slugs were stored get theirs, once
        PublishedContent   -> build_site_app -> SiteServer(settings.site.bind, settings.site.port)
    Service.start() starts it after the status server; Service.shutdown() stops it.

A payment middleware (issue 12 part 2) is handed in here, never added inside website/.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine
from starlette.middleware import Middleware

from agents.tasks import TaskStore
from config.settings import Settings
from publishers.outbox import Outbox
from publishers.slugs import SlugStore
from website import PublishedContent, SiteServer, build_site_app


def backfill_slugs(engine: Engine, persona: str) -> int:
    """Give every delivered post of this persona's tasks that has no slug its slug (derived once, stored); how many."""
    slugs = SlugStore(engine)
    delivered = {r.key: r.task_id for r in Outbox(engine).published() if r.task_id}
    have = slugs.by_keys(delivered)
    missing = {k: t for k, t in delivered.items() if k not in have}
    tasks = TaskStore(engine, persona=persona)
    mine = tasks.statuses(list(missing.values()))
    added = 0
    for key, task_id in missing.items():
        if task_id not in mine:
            continue
        draft = tasks.get(task_id).messages.draft
        if draft is not None:
            slugs.assign(key, draft.title, task_id)
            added += 1
    return added


def build_site(settings: Settings, engine: Engine, *, middleware: Sequence[Middleware] = ()) -> SiteServer:
    """The site's server (not started) over the state database of this persona."""
    backfill_slugs(engine, settings.persona)
    app = build_site_app(PublishedContent(engine, settings.persona), settings, middleware=middleware)
    return SiteServer(app, settings.site.bind, settings.site.port)
