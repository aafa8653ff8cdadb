"""Which links a published post may carry: URLs resolved as a browser resolves them, judged by one policy.

    a link target as a reader's client receives it (attribute value with entities decoded,
    Markdown destination, Liquid argument, a URL Bluesky finds in plain text)
        │
        ▼
    resolve(raw, base) ─ the WHATWG URL steps that decide where a click or a fetch goes ─► Target | None
        │  strip C0 controls and spaces at both ends, drop tab/CR/LF anywhere ("java\\tscript:"),
        │  lower-case the scheme, "\\" is "/" for http(s) ("/\\evil", "https:\\\\evil"),
        │  "//evil" and "https:evil" (other scheme than the base) take a host, any run of slashes,
        │  relative against the base, userinfo split off at the last "@" ("https://dev.to@evil"),
        │  host percent-decoded, IDNA (UTS #46, non-transitional) to ASCII, lower case,
        │  one trailing dot dropped, default port dropped, dot segments removed
        ▼
    LinkPolicy.refusal(raw) ─► None (allowed) | why not
         allowed: an http(s) URL equal to one of the sources (fragment and a trailing slash aside),
                  or any http(s) URL on a platform's own host and port (dev.to, bsky.app, a Forem base);
                  a relative link only through `base`, a page on the platform.
         refused: every other scheme (javascript:, data:, vbscript:, file:, ftp:, ...), mailto: too
                  (no source is an e-mail address, and an address a model made up is a phishing
                  vector as much as a link), a URL with user info, a URL a browser cannot parse.

    text_links(text) ─ the links Bluesky's own detection finds in plain text: http(s) URLs and bare
                       domains with a known top-level domain ("evil.com/x", "ASP.NET" is one too).

Where it lives, and why: the critic (agents/) and the Bluesky facets and link card (publishers/) need
the same answer, and the arrows let agents import only `publishers.protocol` while publishers import
only config. A URL policy is not a setting, so it is not config's; it belongs to the seam between
agents and platforms. It lives here, pure (stdlib plus `idna`, which httpx already brings), and the
package root (publishers/__init__.py, which agents may import) re-exports it; nothing else restates
these rules.

Numeric hosts are compared as written: another spelling of an allowed IP address ("127.1") is refused,
never allowed, so the simplification can only refuse more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

import idna

BLUESKY_APP_URL = "https://bsky.app"  # where a Bluesky post is read; a platform host for the link policy

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
WEB_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_STRIP = "".join(chr(c) for c in range(0x21))  # C0 controls and space, stripped at both ends
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
# Code points a host may not contain after percent-decoding (WHATWG "forbidden domain code point").
_FORBIDDEN_HOST = re.compile(r"[\x00-\x20#%/:<>?@\[\\\]^|\x7f]")
_PORT = re.compile(r"[0-9]*")
# Left alone in a path or query (everything else non-ASCII, space, quotes, angle brackets is encoded).
_PATH_SAFE = "!$&'()*+,-./:;=@_~%[]^|"
_QUERY_SAFE = "!$&()*+,-./:;=?@_~%[]^|`{}\\"


@dataclass(frozen=True)
class Target:
    """Where a link goes: the parts a browser decides with. `host` is empty for opaque schemes (mailto:, data:)."""

    scheme: str
    host: str = ""
    port: int | None = None  # None: the scheme's default
    path: str = ""
    query: str | None = None
    userinfo: bool = False

    @property
    def web(self) -> bool:
        """An http(s) URL with a host."""
        return self.scheme in WEB_SCHEMES and bool(self.host)

    @property
    def origin(self) -> tuple[str, int | None]:
        """(host, effective port): what "the same host" compares."""
        return self.host, self.port if self.port is not None else DEFAULT_PORTS.get(self.scheme)

    @property
    def page(self) -> tuple[str, str, int | None, str, str | None]:
        """The page a link opens, fragment aside and a trailing slash tolerated (what "the same URL" compares)."""
        return self.scheme, self.host, self.port, self.path.rstrip("/") or "/", self.query

    def __str__(self) -> str:
        if not self.host:
            return f"{self.scheme}:{self.path}"
        port = f":{self.port}" if self.port is not None else ""
        query = f"?{self.query}" if self.query is not None else ""
        return f"{self.scheme}://{self.host}{port}{self.path}{query}"


def resolve(raw: str, base: Target | str | None = None) -> Target | None:
    """Where a browser goes for `raw` on a page at `base`; None when it cannot parse it (nothing is followed)."""
    if isinstance(base, str):
        base = resolve(base)
    s = raw.strip(_STRIP).translate(_TAB_NEWLINE)
    m = _SCHEME.match(s)
    if m is None:
        if base is None or not base.host:
            return None
        return _relative(s, base)
    scheme, rest = m.group(0)[:-1].lower(), s[m.end() :]
    if scheme not in DEFAULT_PORTS:
        return Target(scheme=scheme, path=rest)  # opaque (mailto:, javascript:, data:, file: ...): never a web link
    rest = _slashes(rest)
    if base is not None and base.scheme == scheme and not rest.startswith("//"):
        return _relative(rest, base)  # "https:foo" on an https page is a relative path
    return _authority(scheme, rest.lstrip("/"))


def _relative(s: str, base: Target) -> Target | None:
    if base.scheme in DEFAULT_PORTS:
        s = _slashes(s)
    if s.startswith("//"):
        return _authority(base.scheme, s.lstrip("/"))
    path, query = base.path or "/", base.query
    if s.startswith("/"):
        path, query = _split_query(s)
    elif s.startswith("?"):
        query = _split_query(s)[1]
    elif s and not s.startswith("#"):
        rel, query = _split_query(s)
        path = path[: path.rfind("/") + 1] + rel
    return Target(scheme=base.scheme, host=base.host, port=base.port, path=_path(path), query=_query(query))


def _slashes(s: str) -> str:
    """Backslashes as slashes, up to the query or fragment (where a browser keeps them as they are)."""
    cut = min((i for i in (s.find("?"), s.find("#")) if i >= 0), default=len(s))
    return s[:cut].replace("\\", "/") + s[cut:]


def _split_query(s: str) -> tuple[str, str | None]:
    s = s.split("#", 1)[0]
    path, sep, query = s.partition("?")
    return path, query if sep else None


def _authority(scheme: str, s: str) -> Target | None:
    end = len(s)
    for stop in "/?#":
        i = s.find(stop)
        if i >= 0:
            end = min(end, i)
    authority, rest = s[:end], s[end:]
    userinfo = "@" in authority
    hostport = authority.rsplit("@", 1)[-1]
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            return None
        host, port_text = hostport[: close + 1].lower(), hostport[close + 1 :]
        if port_text and not port_text.startswith(":"):
            return None
        port_text = port_text[1:]
    else:
        host, _, port_text = hostport.partition(":")
        host = _host(host)
        if host is None:
            return None
    if not _PORT.fullmatch(port_text) or (port_text and int(port_text) > 65535):
        return None
    port = int(port_text) if port_text else None
    if port == DEFAULT_PORTS[scheme]:
        port = None
    path, query = _split_query(rest)
    return Target(scheme=scheme, host=host, port=port, path=_path(path or "/"), query=_query(query), userinfo=userinfo)


def _host(text: str) -> str | None:
    """The ASCII host a browser connects to, or None when a browser refuses it."""
    try:
        host = unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True, std3_rules=False, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None  # a host IDNA refuses is a host the browser refuses (or one we cannot vouch for)
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]  # "dev.to." is the same DNS name
    if not host or _FORBIDDEN_HOST.search(host):
        return None
    return host


def _path(path: str) -> str:
    """The path as a browser sends it: percent-encoded where it must be, dot segments removed."""
    out: list[str] = []
    segments = quote(path, safe=_PATH_SAFE).split("/")[1:]  # every path here starts with "/"
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        low = seg.lower()
        if low in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
        elif low in (".", "%2e"):
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def _query(query: str | None) -> str | None:
    return None if query is None else quote(query, safe=_QUERY_SAFE)


@dataclass(frozen=True)
class LinkPolicy:
    """The links one post may carry: its sources, and anything on the platforms' own hosts."""

    sources: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()  # base URLs: "https://dev.to", "https://bsky.app"
    base: str | None = None  # the page relative links resolve against; None: the first platform's root

    def __post_init__(self) -> None:
        pages = {t.page for t in map(resolve, self.sources) if t is not None and t.web and not t.userinfo}
        origins = {t.origin for t in map(resolve, self.platforms) if t is not None and t.web and not t.userinfo}
        base = self.base or (f"{self.platforms[0].rstrip('/')}/" if self.platforms else None)
        object.__setattr__(self, "_pages", frozenset(pages))
        object.__setattr__(self, "_origins", frozenset(origins))
        object.__setattr__(self, "_base", resolve(base) if base else None)

    def target(self, raw: str) -> Target | None:
        """Where `raw` leads from a page of this post."""
        return resolve(raw, self._base)  # type: ignore[attr-defined]

    def refusal(self, raw: str) -> str | None:
        """None when the link may be published; otherwise why not."""
        t = self.target(raw)
        if t is None:
            return "is not a URL a browser can resolve on a page of this post"
        if not t.web:
            return f"uses the {t.scheme}: scheme (only http(s) links to the sources are allowed)"
        if t.userinfo:
            return "carries a user name before its host (user@host)"
        if t.page in self._pages or t.origin in self._origins:  # type: ignore[attr-defined]
            return None
        return "is not one of the brief's sources"

    def allows(self, raw: str) -> bool:
        """True when the link may be published."""
        return self.refusal(raw) is None


# -- links in plain text, as Bluesky finds them -------------------------------------------------------

# Bluesky's detection (@atproto/api RichText.detectFacets): after the start, a space or "(", an http(s)
# URL or a bare domain; one trailing punctuation mark and an unbalanced ")" are not part of it.
_TEXT_LINK = re.compile(
    r"(?:^|(?<=\s)|(?<=\())((https?://\S+)|((?P<domain>[a-z][a-z0-9]*(?:\.[a-z0-9]+)+)\S*))",
    re.IGNORECASE | re.MULTILINE,
)
# Country-code TLDs (ISO 3166) and the generic ones in common use; a bare "name.tld" with another TLD
# is text to Bluesky as well as here.
_CC_TLD = re.compile(
    r"a[cdefgilmoqrstuwxz]|b[abdefghijmnorstvwyz]|c[acdfghiklmnoruvwxyz]|d[ejkmoz]|e[cegrstu]|f[ijkmor]"
    r"|g[abdefghilmnpqrstuwy]|h[kmnrtu]|i[delmnoqrst]|j[emop]|k[eghimnprwyz]|l[abcikrstuvy]"
    r"|m[acdeghklmnopqrstuvwxyz]|n[acefgilopruz]|om|p[aefghklmnrstwy]|qa|r[eosuw]|s[abcdeghijklmnorstuvxyz]"
    r"|t[cdfghjklmnortvwz]|u[agksyz]|v[aceginu]|w[fs]|y[et]|z[amw]"
)
_GENERIC_TLDS = frozenset(
    "com net org edu gov mil int info biz name pro aero asia cat coop jobs mobi museum post tel travel xxx "
    "app dev page blog cloud online site website store shop tech top xyz club live link click zip mov news "
    "io ai art design email space today world life network digital media group solutions systems software "
    "codes tools guru ninja rocks social chat wiki fun run win bid loan men party review science stream "
    "trade webcam date download racing accountant faith cricket host hosting icu cyou buzz monster rest "
    "work works company center support services agency studio land one new global plus best fyi lol wtf "
    "google amazon apple microsoft android youtube gmail mozilla foo bar meme how soy here search "
    "lat red blue pink black green mom dad moe ooo nyc london berlin paris tokyo".split()
)


def _known_tld(domain: str) -> bool:
    tld = domain.rsplit(".", 1)[-1].lower()
    return tld in _GENERIC_TLDS or bool(_CC_TLD.fullmatch(tld))


def text_links(text: str) -> list[tuple[int, int, str]]:
    """(start, end, uri) of every link Bluesky's detection finds in plain text; bare domains get https://."""
    found = []
    for m in _TEXT_LINK.finditer(text or ""):
        uri, start = m.group(1), m.start(1)
        if not uri.lower().startswith("http"):
            if not _known_tld(m.group("domain")):
                continue
            uri = f"https://{uri}"
        end = m.end(1)
        if uri[-1] in ".,;:!?":
            uri, end = uri[:-1], end - 1
        if uri.endswith(")") and "(" not in uri:
            uri, end = uri[:-1], end - 1
        found.append((start, end, uri))
    return found
