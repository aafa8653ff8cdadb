"""The one redaction of secrets, for everything selfpub writes or shows: log lines, `config show`,
job errors stored in job_run and the status page.

    redact(text, secrets)            free text
     |  1. every known secret value           (the settings' SecretStr values, see secret_values)
     |  2. every URL found in the text  ----> redact_url(url), the URL taken apart, not pattern-matched:
     |                                          database URLs   credentials up to the last '@', the rest
     |                                                          read by sqlalchemy make_url (as the engine does)
     |                                          other URLs      urllib.parse.urlsplit
     |                                        and in each part:
     |                                          userinfo        the password; the user name too when it is
     |                                                          a token (web URLs, key-shaped names)
     |                                          query/fragment  values of secret-named parameters (key,
     |                                                          token, sig, ...) and key-shaped values
     |                                          path            the key segment of known key-in-path
     |                                                          providers (Infura /v3/<key>, Alchemy,
     |                                                          QuickNode, Ankr, ...) and any key-shaped
     |                                                          segment (long hex, UUID, base58/64 tokens)
     |  3. SECRET_PATTERNS                      bearer tokens, sk- keys, raw private keys, password=...
     +-- Redactor                              the same, holding the known values (the log handler keeps one)

secret_values(settings) gives every SecretStr of the settings plus the secret parts of every URL in
them (a database password, an RPC key), so those are masked even where they appear outside a URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

MASK = "[REDACTED]"
MASK_IN_URL = "__REDACTED__"  # stands for MASK while a URL that already holds one is taken apart
# Secrets shorter than this would mask ordinary words; they are still caught by patterns and URL parts.
MIN_SECRET_LEN = 4
# A URL part learnt as a secret value is masked everywhere: short ones ("postgres") would garble the logs.
MIN_LEARNT_URL_SECRET_LEN = 12

# (pattern, replacement): the replacement keeps the label and masks the value.
SECRET_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{12,}"), rf"\1 {MASK}"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{12,}"), MASK),
    (re.compile(r"\b0x[0-9a-fA-F]{64}\b"), MASK),  # a raw private key
    (re.compile(r"(?i)\b(password|passwd|secret|api[_-]?key|app[_-]?password|private[_-]?key|authorization)"
                r"(\s*[=:]\s*|\"\s*:\s*\")[^\s\"',;&]{3,}"), rf"\1\2{MASK}"),
)

# A URL inside free text: a scheme, "://", then anything up to white space, a quote or an escape.
URL_IN_TEXT = re.compile(r"(?i)\b[a-z][a-z0-9+.-]{1,30}://[^\s\"'<>`\\]+")
# Database URLs are read with sqlalchemy's make_url (a password may hold '/', '?' or '#' unescaped).
DB_SCHEMES = frozenset({"postgresql", "postgres", "mysql", "mariadb", "sqlite", "oracle", "mssql", "cockroachdb"})
# Web URLs: a bare user name there (https://TOKEN@host) is a token, not a login.
WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})

# Query/fragment parameter names (lower-cased, '-' and '_' removed) whose values are secrets.
SECRET_PARAMS = frozenset({
    "key", "apikey", "token", "accesstoken", "refreshtoken", "idtoken", "secret", "clientsecret", "password",
    "passwd", "pass", "pwd", "auth", "authorization", "signature", "sig", "dkey", "jwt", "bearer", "credential",
    "credentials", "session", "sessionid", "privatekey", "xamzsignature", "xamzcredential", "xamzsecuritytoken",
    "code", "otp",
})
# ... and names that contain one of these (sslpassword, x-api-key, auth_token), except these few.
SECRET_PARAM_PARTS = ("key", "token", "secret", "passw", "signature", "credential", "auth")
PUBLIC_PARAMS = frozenset({"tokentype", "keyid", "author", "authors", "authority"})


@dataclass(frozen=True)
class KeyInPath:
    """A provider that carries its key in the path: the segment `at` places after `after` (or from the start)."""

    host: str  # the host or a parent domain
    after: str | None  # a marker segment ("v3"); None: count from the start (negative: from the end)
    at: int


KEY_IN_PATH = (
    KeyInPath("infura.io", "v3", 1),  # mainnet.infura.io/v3/<key>, /ws/v3/<key>
    KeyInPath("alchemy.com", "v2", 1),  # eth-mainnet.g.alchemy.com/v2/<key>, /nft/v2/<key>/...
    KeyInPath("alchemy.com", "v3", 1),
    KeyInPath("alchemyapi.io", "v2", 1),
    KeyInPath("quiknode.pro", None, 0),  # <name>.quiknode.pro/<token>/
    KeyInPath("rpc.ankr.com", None, 1),  # rpc.ankr.com/<chain>/<key>
    KeyInPath("p2pify.com", None, 0),  # Chainstack nd-123-456-789.p2pify.com/<key>
    KeyInPath("chainstack.com", None, 0),
    KeyInPath("blastapi.io", None, 0),  # eth-mainnet.blastapi.io/<project id>
    KeyInPath("getblock.io", None, 0),  # go.getblock.io/<token>/
    KeyInPath("drpc.org", None, 1),  # lb.drpc.org/<chain>/<key> (the ogrpc form carries dkey= in the query)
    KeyInPath("gateway.tenderly.co", None, 0),
    KeyInPath("nownodes.io", None, 0),
    KeyInPath("pokt.network", "lb", 1),  # .../v1/lb/<app id>
    KeyInPath("llamarpc.com", "rpc", 1),
    KeyInPath("blockpi.network", "rpc", 1),
    KeyInPath("moralis-nodes.com", None, 1),
    KeyInPath("developer.coinbase.com", None, -1),  # /rpc/v1/base/<key>
    KeyInPath("zan.top", None, -1),
    KeyInPath("api.telegram.org", None, 0),  # /bot<id>:<token>/...
    KeyInPath("hooks.slack.com", "services", 3),
    KeyInPath("discord.com", "webhooks", 2),
)

_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HEX = re.compile(r"(?:0x)?[0-9a-fA-F]{16,}")
_EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TOKENISH = re.compile(r"[A-Za-z0-9_~+=.:-]{20,}")
# What a readable slug is made of: words, acronyms and numbers between separators.
_WORDY = re.compile(r"[A-Za-z][a-z]{0,23}|[A-Z]{1,10}|[0-9]{1,20}")
_SEPARATORS = re.compile(r"[-_.~:+=]")
MIN_RANDOM_CHARS = 16  # a 96-bit token in base64; slugs mix in a few short "v2", "rc1", "3a" at most


def looks_like_key(text: str) -> bool:
    """True for a token a machine made (long hex, UUID, base58/base64-ish), false for words, slugs and numbers."""
    if _UUID.fullmatch(text):
        return True
    if _EVM_ADDRESS.fullmatch(text):
        return False  # an address is public
    if text.isdigit():
        return len(text) >= 24  # ids and timestamps are shorter
    if _HEX.fullmatch(text):
        return True
    if not _TOKENISH.fullmatch(text):
        return False
    # Random characters, not a slug: at least MIN_RANDOM_CHARS of it is outside words and numbers.
    return sum(len(c) for c in _SEPARATORS.split(text) if not _WORDY.fullmatch(c)) >= MIN_RANDOM_CHARS


def _secret_param(name: str) -> bool:
    norm = unquote(name).lower().replace("-", "").replace("_", "")
    if norm in PUBLIC_PARAMS:
        return False
    return norm in SECRET_PARAMS or any(part in norm for part in SECRET_PARAM_PARTS)


class _Found:
    """Collects the raw and decoded forms of what one URL had masked."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def mask(self, raw: str) -> str:
        self.parts += [raw, unquote(raw)]
        return MASK


def _redact_params(text: str, found: _Found) -> str:
    """A query or fragment ("a=1&key=x"), each secret value masked, everything else kept byte for byte."""
    out = []
    for pair in text.split("&"):
        name, eq, value = pair.partition("=")
        decoded = unquote(value)
        if eq and value and _secret_param(name):
            value = found.mask(value)
        elif eq and "://" in decoded:  # a URL passed along (redirect_uri=...) may carry its own secrets
            shown = _redact_url(decoded, found)
            value = value if shown == decoded else quote(shown, safe="[]")  # the mask stays readable
        elif eq and looks_like_key(decoded):
            value = found.mask(value)
        elif not eq and looks_like_key(unquote(name)):  # a bare token: "?<key>" or "#<key>"
            name = found.mask(name)
        out.append(f"{name}{eq}{value}")
    return "&".join(out)


def _key_positions(host: str, segments: list[str]) -> set[int]:
    """Indexes of the path segments a known key-in-path provider puts its key in."""
    where: set[int] = set()
    for rule in KEY_IN_PATH:
        if host != rule.host and not host.endswith("." + rule.host):
            continue
        named = [i for i, s in enumerate(segments) if s]  # indexes of non-empty segments
        if rule.after is None:
            if -len(named) <= rule.at < len(named):
                where.add(named[rule.at])
        elif rule.after in segments:
            i = segments.index(rule.after) + rule.at
            if i < len(segments) and segments[i]:
                where.add(i)
    return where


def _redact_path(host: str, path: str, found: _Found) -> str:
    segments = path.split("/")
    keyed = _key_positions(host, segments)
    return "/".join(
        found.mask(s) if s and (i in keyed or looks_like_key(unquote(s))) else s for i, s in enumerate(segments)
    )


def _redact_userinfo(userinfo: str, web: bool, found: _Found) -> str:
    user, colon, password = userinfo.partition(":")
    token_user = looks_like_key(unquote(user)) or (web and not password)
    shown_user = found.mask(user) if user and token_user else user
    return shown_user + colon + (found.mask(password) if password else "")


def _redact_db_url(url: str, found: _Found) -> str | None:
    """A database URL re-rendered with its secrets masked (host, port, database, query as make_url reads them).

    People paste passwords unescaped, '@', '/', '?' and '#' included, so the credentials are everything up to
    the last '@'; make_url then reads the rest, which holds none. None when it is not a database URL.
    """
    scheme, _, rest = url.partition("://")
    userinfo, at, hostpart = ("", "", rest) if rest.startswith("/") else rest.rpartition("@")  # sqlite: a path
    try:
        u: URL = make_url(f"{scheme}://{hostpart}")
    except (ArgumentError, ValueError):
        return None
    auth = ""
    if at:
        user, colon, password = userinfo.partition(":")
        auth = (found.mask(user) if looks_like_key(unquote(user)) else user) + colon
        auth += (found.mask(password) if password else "") + "@"
    host = u.host or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{u.port}" if u.port is not None else "")
    database = f"/{u.database}" if u.database is not None else ""
    pairs = [(k, v) for k, vs in u.query.items() for v in ((vs,) if isinstance(vs, str) else vs)]
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    return f"{u.drivername}://{auth}{netloc}{database}" + (f"?{_redact_params(query, found)}" if query else "")


def _redact_url(url: str, found: _Found) -> str:
    if MASK in url:  # redacted before (the log handler redacts twice): '[' would read as an IPv6 host
        return _redact_url(url.replace(MASK, MASK_IN_URL), found).replace(MASK_IN_URL, MASK)
    scheme = url.partition("://")[0].lower()
    if scheme.partition("+")[0] in DB_SCHEMES:
        shown = _redact_db_url(url, found)
        if shown is not None:
            return shown
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket: nothing in it can be trusted to be harmless
        return f"{url.partition('://')[0]}://{found.mask(url.partition('://')[2])}"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    before_fragment = url.partition("#")[0]
    shown = f"{parts.scheme}://"
    if at:
        shown += _redact_userinfo(userinfo, scheme in WEB_SCHEMES, found) + "@"
    shown += hostport + _redact_path(host, parts.path, found)
    if "?" in before_fragment:
        shown += "?" + _redact_params(parts.query, found)
    if "#" in url:
        shown += "#" + _redact_params(parts.fragment, found)
    return shown


def redact_url(url: str) -> str:
    """One URL with every secret-bearing part masked; host, port and ordinary path parts kept."""
    return _redact_url(url, _Found())


def url_secrets(url: str) -> set[str]:
    """The secret parts of one URL (raw and percent-decoded), as redact_url would mask them."""
    found = _Found()
    _redact_url(url, found)
    return {p for p in found.parts if p and MASK_IN_URL not in p and MASK not in p}


def _trim(candidate: str) -> tuple[str, str]:
    """A URL found in text without the punctuation that ends the sentence around it: (url, tail)."""
    end = len(candidate)
    while end:
        c = candidate[end - 1]
        opener = {")": "(", "]": "["}.get(c)
        if c in ".,;:!?" or (opener and candidate.count(opener, 0, end) < candidate.count(c, 0, end)):
            end -= 1
        else:
            break
    return candidate[:end], candidate[end:]


def _redact_urls_in(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        url, tail = _trim(m.group(0))
        return redact_url(url) + tail

    return URL_IN_TEXT.sub(one, text) if "://" in text else text


class Redactor:
    """Masks known secret values, the secret parts of every URL, and secret-looking patterns in text."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets: list[str] = []
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Add secret values (longest first, so a secret containing another is masked whole)."""
        merged = set(self.secrets) | {s for s in secrets if s and len(s) >= MIN_SECRET_LEN}
        self.secrets = sorted(merged, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """The text with every secret masked."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _redact_urls_in(text)
        for pattern, replacement in SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def redact_value(self, value: Any) -> Any:
        """A redacted copy of a value (strings, containers, objects); numbers, booleans and None as they are."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.redact_value(v) for v in value)
        return self.redact(str(value))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text with known secret values, URL secrets and credential patterns masked."""
    return Redactor(secrets).redact(text)


def secret_values(settings: BaseModel) -> set[str]:
    """Every SecretStr value anywhere in the settings tree, and the (long enough) secret parts of its URLs."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            raw = value.get_secret_value()
            if raw and len(raw) >= MIN_SECRET_LEN:
                found.add(raw)
        elif isinstance(value, str) and "://" in value:
            found.update(p for p in url_secrets(value) if len(p) >= MIN_LEARNT_URL_SECRET_LEN)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for v in value:
                walk(v)

    walk(settings)
    return found
