"""HTML of the site's pages: stored Markdown rendered safely, everything else escaped.

    article Markdown
      markdown-it-py, gfm-like, html OFF (raw HTML is shown escaped, never run), linkify on,
      the renderer's own javascript:/vbscript:/file:/data: filter on
        -> every link and image target judged by the critic's LinkPolicy (publishers.urls):
           the brief's sources, the article's own page, the platforms' hosts; a refused link
           keeps its text and loses its href, a refused image becomes its alt text
        -> allowed links get rel="nofollow noopener noreferrer"
    titles, descriptions, sources, dates     html.escape, attributes quoted

The pages load nothing from elsewhere (CSP in website/app.py): no script, inline style only.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from markdown_it import MarkdownIt
from markdown_it.token import Token

from kernel.money import format_credits
from publishers import LinkPolicy, resolve
from website.content import Article

_MD = MarkdownIt("gfm-like", {"html": False, "linkify": True})
REL = "nofollow noopener noreferrer"

STYLE = (
    "body{font:17px/1.6 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "a{color:#0645ad}header a{font-weight:600;text-decoration:none;color:#222}"
    "pre{overflow-x:auto;background:#f5f5f5;padding:.75rem}code{background:#f5f5f5}"
    ".meta{color:#666;font-size:.9rem}li{margin:.3rem 0}img{max-width:100%}"
)


def esc(text: str) -> str:
    """Text escaped for HTML content and quoted attributes."""
    return html.escape(text, quote=True)


def _judge(children: list[Token], policy: LinkPolicy) -> list[Token]:
    out: list[Token] = []
    refused: list[bool] = []  # one per open link: whether its href was dropped
    for tok in children:
        if tok.type == "link_open":
            ok = policy.allows(str(tok.attrGet("href") or ""))
            refused.append(not ok)
            if not ok:
                continue
            tok.attrSet("rel", REL)
        elif tok.type == "link_close":
            if refused and refused.pop():
                continue
        elif tok.type == "image" and not policy.allows(str(tok.attrGet("src") or "")):
            text = Token("text", "", 0)
            text.content = tok.content
            out.append(text)
            continue
        if tok.children:
            tok.children = _judge(tok.children, policy)
        out.append(tok)
    return out


def markdown_html(markdown: str, policy: LinkPolicy) -> str:
    """The article body as HTML: raw HTML escaped, every link and image judged by `policy`."""
    env: dict = {}
    tokens = _MD.parse(markdown, env)
    for tok in tokens:
        if tok.children:
            tok.children = _judge(tok.children, policy)
    return _MD.renderer.render(tokens, _MD.options, env)


def article_policy(article: Article, page_url: str, platforms: Sequence[str]) -> LinkPolicy:
    """What the page of `article` may link to: the critic's rule (sources, its own page, the platforms)."""
    return LinkPolicy(sources=(*article.sources, page_url), platforms=tuple(platforms), base=page_url)


def credits(ucr: int) -> str:
    """Micro-credits as a credits figure for readers."""
    return format_credits(ucr)


def _date(when: datetime) -> str:
    return f'<time datetime="{esc(when.isoformat())}">{esc(when.strftime("%Y-%m-%d"))}</time>'


def _page(site_title: str, title: str, body: str, *, head: str = "") -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        '<link rel="alternate" type="application/atom+xml" title="Atom feed" href="/feed.atom">'
        f"{head}<style>{STYLE}</style></head><body>"
        f'<header><a href="/">{esc(site_title)}</a></header><main>{body}</main></body></html>\n'
    )


def index_page(site_title: str, articles: Sequence[Article]) -> str:
    """The index: every article, newest first, with its date and compute cost."""
    if not articles:
        items = "<p>Nothing published yet.</p>"
    else:
        rows = []
        for a in articles:
            desc = f"<br>{esc(a.description)}" if a.description else ""
            rows.append(f'<li><a href="/a/{esc(a.slug)}">{esc(a.title)}</a> <span class="meta">{_date(a.published_at)}'
                        f" · compute {esc(credits(a.cost))} credits</span>{desc}</li>")
        items = "<ul>" + "".join(rows) + "</ul>"
    return _page(site_title, site_title, f"<h1>{esc(site_title)}</h1>{items}")


def source_list(sources: Sequence[str]) -> str:
    """The sources as a list: http(s) URLs linked (nofollow), anything else as text."""
    rows = []
    for src in sources:
        target = resolve(src)
        if target is not None and target.web and not target.userinfo:
            rows.append(f'<li><a href="{esc(str(target))}" rel="{REL}">{esc(src)}</a></li>')
        else:
            rows.append(f"<li>{esc(src)}</li>")
    return "<ul>" + "".join(rows) + "</ul>" if rows else "<p>No sources recorded.</p>"


def article_page(site_title: str, article: Article, page_url: str, platforms: Sequence[str]) -> str:
    """One article: rendered body, sources, compute cost, the machine-readable links."""
    body = markdown_html(article.markdown, article_policy(article, page_url, platforms))
    head = (f'<link rel="canonical" href="{esc(page_url)}">'
            f'<meta property="og:type" content="article"><meta property="og:url" content="{esc(page_url)}">'
            f'<meta property="og:title" content="{esc(article.title)}">'
            f'<meta name="description" content="{esc(article.description)}">'
            f'<meta property="og:description" content="{esc(article.description)}">')
    main = (
        f"<article><h1>{esc(article.title)}</h1>"
        f'<p class="meta">Published {_date(article.published_at)} · compute cost '
        f"<strong>{esc(credits(article.cost))} credits</strong></p>"
        f"{body}</article>"
        f"<section><h2>Sources</h2>{source_list(article.sources)}</section>"
        f'<p class="meta">For machines: <a href="/a/{esc(article.slug)}.md">Markdown and sources (JSON)</a>'
        f' · <a href="/api/briefs/{esc(article.slug)}">the research brief (JSON)</a></p>'
    )
    return _page(site_title, f"{article.title} · {site_title}", main, head=head)
