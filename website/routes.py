"""The site's routes (GET and HEAD only) and the one list of those a payment middleware may price.

    /                    index: every article, newest first (HTML)
    /a/{slug}            one article (HTML): body, sources, compute cost in credits
    /a/{slug}.md         the article for machines, application/json:
                           {"slug", "url", "title", "description", "tags", "published",
                            "markdown": the stored Markdown, whole,
                            "sources": [url, ...], "cost": {"ucr": int, "credits": "0.0123"}}
    /api/briefs/{slug}   the research brief behind it, application/json:
                           {"slug", "url", "title", "topic", "angle",
                            "key_points": [{"claim", "source_url"}], "sources": [...],
                            "items": [{"title", "url", "feed_url", "published"}]}
    /feed.atom           Atom feed of the newest articles
    /sitemap.xml         the index and every article page

PAID_PATHS names the routes issue 12 part 2 charges for (free here): a payment
middleware handed to build_site_app reads them from this one place, so no
route is edited to make it paid. Their keys are the read kinds
(`income:reads:<kind>`).

Every handler reads through a SiteContent (website/content.py), which never
returns a draft; an unknown slug is the same tiny 404 as an unknown path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from website.content import Article, SiteContent
from website.feeds import FEED_ENTRIES, atom_feed, sitemap
from website.render import article_page, article_policy, credits, index_page, markdown_html

ARTICLE = "/a/{slug}"
ARTICLE_MARKDOWN = "/a/{slug}.md"
BRIEF = "/api/briefs/{slug}"
PAID_PATHS: dict[str, str] = {"article": ARTICLE_MARKDOWN, "brief": BRIEF}  # read kind -> route path
INDEX_LIMIT = 200

NOT_FOUND_BODY = b"not found\n"
HTML = "text/html; charset=utf-8"


def x402_pattern(path: str) -> str:
    """A route path in the x402 SDK's route syntax ("/a/{slug}.md" -> "/a/[slug].md")."""
    return re.sub(r"\{(\w+)\}", r"[\1]", path)


def not_found() -> Response:
    """The one 404: a fixed tiny body that says nothing about what exists."""
    return Response(NOT_FOUND_BODY, status_code=404, media_type="text/plain")


@dataclass(frozen=True)
class SiteConfig:
    """What the pages need from the settings."""

    title: str
    public_url: str | None  # None: absolute links are made from the request's own base URL
    platforms: tuple[str, ...]  # hosts an article may link to besides its sources (the critic's list)


class Pages:
    """The handlers, over one SiteContent."""

    def __init__(self, content: SiteContent, config: SiteConfig):
        self.content = content
        self.config = config

    def base(self, request: Request) -> str:
        """The site's absolute base URL, without a trailing slash."""
        return self.config.public_url or str(request.base_url).rstrip("/")

    def _platforms(self, base: str) -> tuple[str, ...]:
        return (base, *self.config.platforms)

    def _article(self, request: Request) -> Article | None:
        return self.content.article(request.path_params["slug"])

    def index(self, request: Request) -> Response:
        """GET /."""
        return Response(index_page(self.config.title, self.content.articles(INDEX_LIMIT)), media_type=HTML)

    def article(self, request: Request) -> Response:
        """GET /a/{slug}."""
        found = self._article(request)
        if found is None:
            return not_found()
        base = self.base(request)
        page = article_page(self.config.title, found, f"{base}/a/{found.slug}", self._platforms(base))
        return Response(page, media_type=HTML)

    def article_markdown(self, request: Request) -> Response:
        """GET /a/{slug}.md: the whole Markdown and its sources, as JSON."""
        found = self._article(request)
        if found is None:
            return not_found()
        return JSONResponse({
            "slug": found.slug, "url": f"{self.base(request)}/a/{found.slug}", "title": found.title,
            "description": found.description, "tags": list(found.tags), "published": found.published_at.isoformat(),
            "markdown": found.markdown, "sources": list(found.sources),
            "cost": {"ucr": found.cost, "credits": credits(found.cost)},
        })

    def brief(self, request: Request) -> Response:
        """GET /api/briefs/{slug}: the research brief behind the article, as JSON."""
        found = self._article(request)
        if found is None or found.brief is None:
            return not_found()
        b = found.brief
        return JSONResponse({
            "slug": found.slug, "url": f"{self.base(request)}/a/{found.slug}", "title": found.title,
            "topic": b.topic, "angle": b.angle,
            "key_points": [{"claim": k.claim, "source_url": k.source_url} for k in b.key_points],
            "sources": list(b.sources),
            "items": [{"title": i.title, "url": i.url, "feed_url": i.feed_url,
                       "published": i.published.isoformat() if i.published else None} for i in found.items],
        })

    def feed(self, request: Request) -> Response:
        """GET /feed.atom."""
        base = self.base(request)
        articles = self.content.articles(FEED_ENTRIES)
        bodies = {a.slug: markdown_html(a.markdown, article_policy(a, f"{base}/a/{a.slug}", self._platforms(base)))
                  for a in articles}
        return Response(atom_feed(self.config.title, base, articles, bodies), media_type="application/atom+xml")

    def sitemap(self, request: Request) -> Response:
        """GET /sitemap.xml."""
        return Response(sitemap(self.base(request), self.content.listing()), media_type="application/xml")

    def routes(self) -> list[Route]:
        """The route table (GET, and HEAD with it); the .md route before the page route it would shadow."""
        return [
            Route("/", self.index, methods=["GET"]),
            Route(ARTICLE_MARKDOWN, self.article_markdown, methods=["GET"]),
            Route(ARTICLE, self.article, methods=["GET"]),
            Route(BRIEF, self.brief, methods=["GET"]),
            Route("/feed.atom", self.feed, methods=["GET"]),
            Route("/sitemap.xml", self.sitemap, methods=["GET"]),
        ]
