"""Every link target in an article that a reader's browser will follow or fetch, found as renderers find it.

    body_markdown
      ├─ Forem Liquid tags {% name args %} ─ known embeds ─► their target URL ({% github o/r %} is
      │                                      https://github.com/o/r); unknown or unclosed tags ─► refused
      ├─ markdown-it-py: CommonMark + GFM, HTML on, linkify on (fuzzy too), and every destination
      │  kept (the renderer's own javascript:/data: filter is off, so the policy sees them) ─► HTML
      │     + every reference definition, used or not (another renderer may resolve `[1]` alone)
      ├─ the Markdown source itself read as HTML (raw HTML that CommonMark escapes may pass elsewhere)
      └─ each HTML through html.parser (entities decoded as a browser decodes attribute values):
            href, src, srcset, action, formaction, poster, data, background, cite, ping, longdesc,
            any *href / *src attribute, <param value>, style="" and <style> url(...) / @import / strings,
            <meta http-equiv=refresh> targets, <iframe srcdoc> parsed again; <base> refused outright
      + a plain scan of the raw text: scheme URLs, www., href=/src= the parser may have missed
    ─► Found(raw, where), judged by publishers.protocol.LinkPolicy (resolution + allowed hosts)

The passes only add targets: a renderer that sees a link another does not can only make the critic
refuse more. Liquid tags inside code are judged too (refusing a Jinja sample is cheaper than trusting
a guess of where Forem's code escaping ends).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from markdown_it import MarkdownIt

from publishers import text_links


@dataclass(frozen=True)
class Found:
    """A link target as the browser receives it, and where it was found (for the critic's message)."""

    raw: str
    where: str


# Attributes whose value a browser follows or fetches (the rest of *href / *src are caught by name).
URL_ATTRIBUTES = frozenset(
    "href src action formaction poster data background cite ping longdesc lowsrc dynsrc codebase archive "
    "manifest icon usemap profile classid code itemtype".split()
)
SRCSET_ATTRIBUTES = frozenset({"srcset", "imagesrcset"})
# Tags that replace the page, load active content or change how every relative link resolves.
REFUSED_TAGS = frozenset({"base"})
_META_URL = re.compile(r"^\s*[\d.]*\s*[;,]?\s*(?:url\s*=\s*)?['\"]?([^'\"]*)", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.DOTALL)
_CSS_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})\s?|(.))", re.DOTALL)
_CSS_URL = re.compile(r"url\(\s*(?:\"([^\"]*)\"|'([^']*)'|([^)]*))", re.IGNORECASE)  # whitespace kept: judged
_CSS_STRING = re.compile(r"\"([^\"]*)\"|'([^']*)'")
_SRCSET_DESCRIPTOR = re.compile(r"^\d+(?:\.\d+)?[wxh]$", re.IGNORECASE)

_LIQUID = re.compile(r"\{%-?(.*?)-?%\}", re.DOTALL)
# Forem Liquid tags with no target of their own: they wrap Markdown that is judged as it is.
LIQUID_CONTENT_TAGS = frozenset(
    "details enddetails spoiler endspoiler collapsible endcollapsible raw endraw endcta".split()
)
# Embeds named by an id: the URL the embed loads for it.
LIQUID_ID_EMBEDS = {
    "github": "https://github.com/{}",
    "gist": "https://gist.github.com/{}",
    "youtube": "https://www.youtube.com/watch?v={}",
    "twitter": "https://twitter.com/i/status/{}",
    "tweet": "https://twitter.com/i/status/{}",
    "vimeo": "https://vimeo.com/{}",
    "instagram": "https://www.instagram.com/p/{}",
    "codepen": "https://codepen.io/{}",
    "codesandbox": "https://codesandbox.io/embed/{}",
    "stackblitz": "https://stackblitz.com/edit/{}",
    "replit": "https://replit.com/{}",
    "glitch": "https://glitch.com/embed/#!/embed/{}",
    "speakerdeck": "https://speakerdeck.com/player/{}",
    "slideshare": "https://www.slideshare.net/slideshow/embed_code/key/{}",
    "stackoverflow": "https://stackoverflow.com/q/{}",
    "stackexchange": "https://stackexchange.com/q/{}",
    "twitch": "https://player.twitch.tv/?video={}",
    "asciinema": "https://asciinema.org/a/{}",
    "spotify": "https://open.spotify.com/embed/{}",
}
# Embeds whose argument is a URL.
LIQUID_URL_EMBEDS = frozenset(
    "embed jsfiddle kotlin medium reddit soundcloud wikipedia dotnetfiddle jsitor nexttech blogcast cta".split()
)
# Embeds of the platform's own pages ({% user ben %} is <platform>/ben).
LIQUID_PLATFORM_EMBEDS = frozenset(
    "user tag organization org post link comment devcomment podcast listing poll user_subscription".split()
)


def _renderer() -> MarkdownIt:
    md = MarkdownIt("gfm-like", {"html": True, "linkify": True})
    md.validateLink = lambda url: True  # keep javascript:/data: destinations: the policy refuses them, visibly
    return md


_MD = _renderer()


def article_links(markdown: str) -> tuple[list[Found], list[str]]:
    """(every link target in the article, structural refusals such as an unknown Liquid tag or a <base>)."""
    found: list[Found] = []
    refusals: list[str] = []
    liquid_found, liquid_refusals = liquid_links(markdown)
    found += liquid_found
    refusals += liquid_refusals
    env: dict = {}
    rendered = _MD.render(markdown, env)
    for label, ref in (env.get("references") or {}).items():
        found.append(Found(ref.get("href", ""), f"reference definition [{label}]"))
    for source, where in ((rendered, "rendered"), (markdown, "raw HTML")):
        c = _Collector(where)
        c.feed(source)
        c.close()
        found += c.found
        refusals += c.refusals
    found += [Found(u, "text") for u in text_urls(html.unescape(markdown))]
    return _unique(found), list(dict.fromkeys(refusals))


def liquid_links(markdown: str) -> tuple[list[Found], list[str]]:
    """Targets of Forem Liquid tags; an unknown or unclosed tag is a refusal (we cannot tell what it embeds)."""
    found: list[Found] = []
    refusals: list[str] = []
    for m in _LIQUID.finditer(markdown):
        words = m.group(1).split()
        name = words[0].lower() if words else ""
        args = [a.strip("\"'") for a in words[1:]]
        where = f"Liquid {{% {name} %}}"
        if name in LIQUID_CONTENT_TAGS:
            continue
        known = name in LIQUID_URL_EMBEDS or name in LIQUID_ID_EMBEDS or name in LIQUID_PLATFORM_EMBEDS
        if not known:
            refusals.append(f"uses the Liquid tag {{% {name or '?'} %}}, an embed whose target cannot be checked")
            continue
        if not args:
            refusals.append(f"uses {where} with no target")
            continue
        # Every argument that could be a URL is judged as one; the id forms add the URL the embed loads.
        found += [Found(a, where) for a in args if name in LIQUID_URL_EMBEDS or _url_like(a)]
        if name in LIQUID_ID_EMBEDS:
            found.append(Found(LIQUID_ID_EMBEDS[name].format(args[0]), where))
        elif name in LIQUID_PLATFORM_EMBEDS and not _url_like(args[0]):
            found.append(Found("/" + args[0].lstrip("/"), where))
    if "{%" in _LIQUID.sub(" ", markdown):
        refusals.append("contains an unclosed Liquid tag ({% without %})")
    return found, refusals


def _url_like(arg: str) -> bool:
    return any(c in arg for c in ":/\\") or arg.lower().startswith("www.")


def text_urls(text: str, *, bluesky: bool = False) -> list[str]:
    """URL-looking tokens of plain text: any scheme, www., href=/src= values; with `bluesky`, what Bluesky detects."""
    found = [m.group(0).rstrip(".,;:!?") for m in _TEXT_URL.finditer(text)]
    found += [m.group(1) for m in _ATTR_VALUE.finditer(text)]
    if bluesky:
        found += [uri for _, _, uri in text_links(text)]
    return list(dict.fromkeys(found))


_TEXT_URL = re.compile(
    r"\b[a-z][a-z0-9+.-]*:(?://|\\\\)[^\s<>\"'`)\]]+"  # scheme://... and scheme:\\...
    r"|\bwww\.[^\s<>\"'`)\]]+"
    r"|\b(?:javascript|vbscript|data|file|mailto):[^\s<>\"'`\]]+",
    re.IGNORECASE,
)
_ATTR_VALUE = re.compile(
    r"\b(?:[a-z:-]*href|[a-z-]*src|srcset|action|formaction|poster|data|background|cite|ping)\s*=\s*[\"']?([^\"'\s>]+)",
    re.IGNORECASE,
)


class _Collector(HTMLParser):
    """Link targets of HTML as a browser would follow or fetch them."""

    def __init__(self, where: str, depth: int = 0) -> None:
        super().__init__(convert_charrefs=True)
        self.where = where
        self.depth = depth
        self.found: list[Found] = []
        self.refusals: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        where = f"{self.where} <{tag}>"
        if tag in REFUSED_TAGS:
            self.refusals.append(f"contains a <{tag}> tag, which changes where every link goes")
        if tag == "style":
            self._in_style = True
        named = {k: v or "" for k, v in attrs}
        for name, value in attrs:
            value = value or ""
            if name in URL_ATTRIBUTES or name.endswith(("href", "src")):
                self.found.append(Found(value, f"{where} {name}"))
            elif name in SRCSET_ATTRIBUTES:
                self.found += [Found(u, f"{where} {name}") for u in srcset_urls(value)]
            elif name == "style":
                self.found += [Found(u, f"{where} style") for u in css_urls(value)]
            elif name == "srcdoc" and self.depth < 3:
                inner = _Collector(f"{where} srcdoc", self.depth + 1)
                inner.feed(value)
                inner.close()
                self.found += inner.found
                self.refusals += inner.refusals
            elif name in ("to", "from", "values") and tag in ("set", "animate"):
                self.found += [Found(v, f"{where} {name}") for v in value.split(";")]
        if tag == "meta" and named.get("http-equiv", "").lower() == "refresh":
            m = _META_URL.match(named.get("content", ""))
            self.found.append(Found(m.group(1) if m else named.get("content", ""), f"{where} refresh"))
        if tag == "param" and "value" in named:
            self.found.append(Found(named["value"], f"{where} value"))

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found += [Found(u, f"{self.where} <style>") for u in css_urls(data)]


def srcset_urls(value: str) -> list[str]:
    """Every URL of a srcset: each candidate as the spec splits it, and each comma piece besides."""
    urls = []
    for token in value.split():
        token = token.strip(",")
        for piece in dict.fromkeys([token, *token.split(",")]):
            if piece and not _SRCSET_DESCRIPTOR.match(piece):
                urls.append(piece)
    return urls


def css_urls(css: str) -> list[str]:
    """Every url(...) and every quoted string of CSS (image-set and @import load strings), escapes decoded."""
    raw = _CSS_COMMENT.sub("", css)
    urls = []
    # Escapes decoded as CSS decodes them, and left as written too: a reader (or a renderer's sanitizer)
    # that skips CSS unescaping must not see a link the decoded form hides ("url(/\\evil)" is "/\x0evil").
    for text in (_CSS_ESCAPE.sub(_css_unescape, raw), raw):
        urls += [next(g for g in m.groups() if g is not None) for m in _CSS_URL.finditer(text)]
        urls += [m.group(1) if m.group(1) is not None else m.group(2) for m in _CSS_STRING.finditer(text)]
    return list(dict.fromkeys(urls))


def _css_unescape(m: re.Match[str]) -> str:
    if m.group(1) is None:
        return "" if m.group(2) == "\n" else m.group(2)  # an escaped newline continues the line
    code = int(m.group(1), 16)
    return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


def _unique(found: list[Found]) -> list[Found]:
    seen: set[str] = set()
    out = []
    for f in found:
        if f.raw not in seen:
            seen.add(f.raw)
            out.append(f)
    return out
