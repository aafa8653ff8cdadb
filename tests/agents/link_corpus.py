"""A deterministic corpus of adversarial Markdown/HTML/Liquid link snippets, and an oracle that renders them.

    corpus()  = every CONTEXT (inline link, <angle> destination, reference, image reference, autolink,
                bare URL, raw HTML attribute of many tags, unclosed/nested tags, style url(), srcset,
                meta refresh, Liquid embed ...) x every SPELLING of a link (scheme-relative, backslashes,
                C0/space/tab inside the scheme, entities decimal/hex/named, percent-encoding, userinfo,
                IDN and upper-case hosts, trailing dots, dangerous schemes), plus the allowed spellings.

    oracle_off_source(snippet) = the links a reader would follow, found by a second path:
        markdown-it-py as shipped (html on, linkify on, its own link validation), the result parsed by
        lxml.html (libxml2, not html.parser) and its iterlinks() (href/src/style url()/meta refresh ...)
        plus srcset; each link resolved with urllib.parse.urljoin after the WHATWG pre-steps written out
        below; Liquid tags by Forem's documented forms. A link is off-source unless it is http(s) to a
        source page or to a platform host.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import idna
import lxml.html
from markdown_it import MarkdownIt

SOURCE = "https://src.example/post"
PLATFORM = "https://dev.to"
PAGE = "https://dev.to/me/article-1"  # where relative links resolve
FOREIGN = "evil.example"

# Ways to write a link to the foreign host (the browser ends up on evil.example or a non-web scheme).
FOREIGN_SPELLINGS = (
    f"https://{FOREIGN}/x", f"HTTPS://{FOREIGN.upper()}/x", f"http://{FOREIGN}./x", f"//{FOREIGN}/x",
    f"///{FOREIGN}/x", f"/\\{FOREIGN}/x", f"\\\\{FOREIGN}/x", f"\\/{FOREIGN}/x", f"https:\\\\{FOREIGN}/x",
    f"https:/\\{FOREIGN}/x", f"http:{FOREIGN}/x", f"http:\\\\{FOREIGN}/x", f" https://{FOREIGN}/x",
    f"\thttps://{FOREIGN}/x", f"ht\ttps://{FOREIGN}/x", f"https&#x3A;//{FOREIGN}/x", f"https&#58;//{FOREIGN}/x",
    f"https&colon;//{FOREIGN}/x", f"https:&#x2F;&#x2F;{FOREIGN}/x", f"&#x2F;&#x2F;{FOREIGN}/x",
    f"https://src.example@{FOREIGN}/x", f"https://dev.to@{FOREIGN}/x", f"https://dev.to%40{FOREIGN}/x",
    f"https://dev.to.{FOREIGN}/x", f"https://{FOREIGN}%2Fdev.to/x", f"https://ev%69l.example/x",
    "https://еvil.example/x", "https://ｅｖｉｌ.example/x", "https://EVİL.example/x", f"https://{FOREIGN}:443/x",
    f"https://{FOREIGN}#https://src.example/post", f"https://{FOREIGN}?u=https://src.example/post",
    "https://src.example.evil.example/post", "https://src.example/post@evil.example",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "java&#x09;script:alert(1)",
    "&#106;avascript:alert(1)", "\x01javascript:alert(1)", "data:text/html,<b>x</b>", "data:image/png;base64,iVBOR",
    "vbscript:msgbox(1)", "file:///etc/passwd", f"mailto:x@{FOREIGN}", f"ftp://{FOREIGN}/x",
)
# Ways to write an allowed link (a source page, the platform, a relative link on the platform).
ALLOWED_SPELLINGS = (
    SOURCE, SOURCE + "/", "HTTPS://SRC.EXAMPLE/post", SOURCE + "#part", "https://src.example./post",
    "https://dev.to/me", "https://DEV.to/t/rust", "/t/rust", "t/rust", "?page=2", "#top", "https:t/rust",
    "https://d%65v.to/x", "https://dev.to:443/x",
)

# Where a link can sit; {u} is the link as written.
CONTEXTS = (
    "[text]({u})", "[text](<{u}>)", '[text]({u} "title")', "![img]({u})", "[text][r]\n\n[r]: {u}",
    "![px][r]\n\n[r]: {u}", "[r][]\n\n[r]: <{u}>", "<{u}>", "see {u} now", '<a href="{u}">a</a>',
    "<a href='{u}'>a</a>", "<a href={u}>a</a>", '<A HREF="{u}">a</A>', '<a\nhref="{u}"\n>a</a>',
    '<img src="{u}">', '<img srcset="{u} 2x">', '<p style="background:url({u})">p</p>', '<form action="{u}"></form>',
    '<video poster="{u}"></video>', '<object data="{u}"></object>', '<meta http-equiv="refresh" content="0;url={u}">',
    '<iframe src="{u}"></iframe>', '<div><span><a href="{u}">deep', '<a href="{u}"', '<svg><a xlink:href="{u}">s</a></svg>',
    "{{% embed {u} %}}", "{{% link {u} %}}", "<table background=\"{u}\"><tr><td>x</td></tr></table>",
)
LIQUID_EXTRA = (
    "{% github org/repo %}", "{% youtube dQw4w9WgXcQ %}", "{% twitter 1234567890 %}", "{% codepen https://codepen.io/a/pen/b %}",
    "{% gist https://gist.github.com/a/b %}", "{% katex %}\\href{https://evil.example}{x}{% endkatex %}",
    "{% include evil %}", "{%- embed https://evil.example/x -%}", "{% embed https://evil.example/x", "{% user ben %}",
    "{% details s %}[x](https://evil.example){% enddetails %}", "{% embed https://src.example/post %}",
)


@dataclass(frozen=True)
class Snippet:
    """One corpus entry: an id (for test ids), the Markdown, and whether its link was written to be allowed."""

    id: str
    markdown: str
    written_allowed: bool


def corpus() -> list[Snippet]:
    """Every context x spelling, plus the Liquid forms; deterministic and ordered."""
    out = []
    for (ci, context), (si, (spelling, allowed)) in itertools.product(
        enumerate(CONTEXTS),
        enumerate([(s, False) for s in FOREIGN_SPELLINGS] + [(s, True) for s in ALLOWED_SPELLINGS]),
    ):
        out.append(Snippet(f"c{ci}-s{si}", context.format(u=spelling), allowed))
    out += [Snippet(f"liquid{i}", text, False) for i, text in enumerate(LIQUID_EXTRA)]
    return out


# -- the oracle --------------------------------------------------------------------------------------

_RENDER = MarkdownIt("gfm-like", {"html": True, "linkify": True})
_SPECIAL = ("http", "https", "ws", "wss", "ftp")
_LIQUID = re.compile(r"\{%-?\s*(\w+)\s*(.*?)\s*-?%\}", re.DOTALL)
_LIQUID_FORMS = {  # Forem's documented embed forms: the URL each one loads
    "github": "https://github.com/{}", "youtube": "https://www.youtube.com/embed/{}",
    "twitter": "https://twitter.com/i/status/{}", "user": PLATFORM + "/{}",
}


def rendered_links(markdown: str) -> list[str]:
    """Links lxml finds in markdown-it's HTML (iterlinks: href, src, style url(), meta refresh ...) plus srcset."""
    html = _RENDER.render(markdown)
    if not html.strip():
        return []
    try:
        doc = lxml.html.fragment_fromstring(html, create_parent="div")
    except Exception:  # noqa: BLE001 - lxml refuses some fragments; then nothing renders as a link either
        return []
    links = [link for _, _, link, _ in doc.iterlinks()]
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        for name, value in el.attrib.items():
            if name.endswith("srcset"):
                links += [c.strip().split()[0] for c in value.split(",") if c.strip()]
            elif name.endswith("href") and value not in links:
                links.append(value)
    return links


def liquid_links(markdown: str) -> list[str]:
    """The URL each Liquid tag would load; an unknown tag counts as a link nowhere allowed."""
    out = []
    for name, args in _LIQUID.findall(markdown):
        if name in ("details", "enddetails", "spoiler", "endspoiler"):
            continue
        if name in _LIQUID_FORMS:
            out.append(_LIQUID_FORMS[name].format(args.split()[0] if args else ""))
        elif name in ("embed", "link", "codepen", "gist") and args:
            out.append(args.split()[0])
        else:
            out.append(f"liquid:{name}")
    if "{%" in _LIQUID.sub("", markdown):
        out.append("liquid:unclosed")
    return out


def browser_url(link: str, base: str = PAGE) -> tuple[str, str, int | None, str, bool]:
    """(scheme, host, port, path, has userinfo) by urljoin after the WHATWG pre-steps a browser applies first:

    strip C0 controls and spaces at both ends; remove tab/CR/LF anywhere; for a special scheme (or a
    relative link on an http(s) page) "\\" is "/", a run of 2+ slashes before the host is "//", and
    "http:host" with a scheme other than the page's takes the host; the host is percent-decoded, IDNA
    (UTS #46) mapped, lower-cased, without a trailing dot.
    """
    s = link.strip("".join(chr(c) for c in range(0x21)))
    s = re.sub(r"[\t\n\r]", "", s)
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", s)
    scheme = m.group(1).lower() if m else ""
    if m and scheme not in _SPECIAL:
        return scheme, "", None, s[m.end():], False
    rest = (s[m.end():] if m else s).replace("\\", "/")
    if m and scheme != urlsplit(base).scheme:
        rest = "//" + rest.lstrip("/")
    elif rest.startswith("//"):
        rest = "//" + rest.lstrip("/")
    url = urljoin(base, f"{scheme}:{rest}" if m else rest)
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    host, _, port = netloc.partition(":")
    host = unquote(host)
    if not host.isascii():
        host = idna.encode(host, uts46=True, transitional=False).decode()
    host = host.lower().removesuffix(".")
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port_n = int(port) if port.isdigit() else default
    return parts.scheme, host, None if port_n == default else port_n, parts.path, "@" in parts.netloc


def off_source(link: str) -> bool:
    """True when a browser following `link` from the article leaves the sources and the platform."""
    if link.startswith("liquid:"):
        return True
    try:
        scheme, host, port, path, userinfo = browser_url(link)
    except (ValueError, idna.IDNAError):
        return True  # a link the oracle cannot place is counted as leaving
    if scheme not in ("http", "https") or userinfo:
        return True
    if host == "dev.to" and port is None and scheme == "https":
        return False
    src = urlsplit(SOURCE)
    return not (scheme == src.scheme and host == src.hostname and port is None
                and path.rstrip("/") == src.path.rstrip("/"))


def oracle_off_source(markdown: str) -> list[str]:
    """The links of the rendered snippet that a reader would follow off-source."""
    return [link for link in rendered_links(markdown) + liquid_links(markdown) if off_source(link)]
