"""The agent's own site: every published article, free to read, on a listener of its own.

    daemon/site.py (composition root)
        PublishedContent(engine, persona)    website/content.py  published articles only, read-only
        build_site_app(content, settings, middleware=...)    website/app.py  Starlette: Guard + routes
        SiteServer(app, bind, port)          website/server.py   uvicorn in the daemon's loop, bounded

    routes (website/routes.py): / , /a/{slug}, /a/{slug}.md, /api/briefs/{slug}, /feed.atom,
    /sitemap.xml; PAID_PATHS lists the ones a payment middleware may price.

Imports kernel, config, ledger, publishers and agents, their read functions only; nothing of ours
imports website but daemon/.
"""

from website.app import build_site_app
from website.content import Article, PublishedContent, SiteContent
from website.routes import PAID_PATHS, x402_pattern
from website.server import SiteServer, SiteStartError

__all__ = ["PAID_PATHS", "Article", "PublishedContent", "SiteContent", "SiteServer", "SiteStartError",
           "build_site_app", "x402_pattern"]
