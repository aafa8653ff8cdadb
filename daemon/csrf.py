"""Who may write through the console: the operator's token, a per-page CSRF token, the page's own origin.

    Guard(secret)            secret: the console token (http.console_token_file), None = read-only
      issue()                a CSRF token for one page: "<issued>.<nonce>.<HMAC(secret, csrf|issued|nonce)>"
      spend_csrf(token)      True once per token, within CSRF_MAX_AGE_SECONDS of its issue (a used or stale
                             one is refused: a form submitted twice, or replayed, does nothing)
      session(token)         the cookie value after the operator typed the right token (unlock), or None;
                             after UNLOCK_TRIES wrong tokens within UNLOCK_WINDOW_SECONDS every unlock is
                             refused until the window has passed (guessing costs minutes, not milliseconds)
      unlock_refused()       whether unlocking is refused now for too many wrong tokens
      has_session(cookie)    a cookie this secret signed, within SESSION_MAX_AGE_SECONDS
      same_origin(headers, own)  why a write request is not from the page itself, or None

A write (POST) needs all three: a same-origin request (Sec-Fetch-Site, when sent, is
"same-origin"; Origin, else Referer, names the server's own host:port, and so does Host,
which a DNS-rebound name does not), a fresh unused CSRF token from a page this secret
signed, and the session cookie (HttpOnly, SameSite=Strict, one name per port: cookies on 127.0.0.1
are shared by every port) that only the right token gets.
The secret, the tokens and the cookie are never logged or echoed into a page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

CSRF_MAX_AGE_SECONDS = 3_600  # a page left open longer must be reloaded before it can write
SESSION_MAX_AGE_SECONDS = 12 * 3_600
UNLOCK_TRIES = 5
UNLOCK_WINDOW_SECONDS = 60
COOKIE = "selfpub_console_{port}"  # one per port: cookies on 127.0.0.1 are shared by every port
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class Guard:
    """Signs and checks the console's CSRF tokens and session cookies with the console token."""

    def __init__(self, secret: str | None, clock: Callable[[], float] = time.time):
        self._key = hashlib.sha256(b"selfpub console\0" + secret.encode()).digest() if secret else None
        self._secret = secret.encode() if secret else None
        self.clock = clock
        self._spent: dict[str, float] = {}  # nonce -> issued at, until it is too old to be accepted anyway
        self._wrong: list[float] = []  # when wrong tokens were given, within the last UNLOCK_WINDOW_SECONDS
        self._lock = threading.Lock()

    @property
    def writable(self) -> bool:
        """Whether a console token is configured (else the console is read-only)."""
        return self._key is not None

    def _sign(self, purpose: str, issued: int, nonce: str) -> str:
        assert self._key is not None
        return hmac.new(self._key, f"{purpose}|{issued}|{nonce}".encode(), hashlib.sha256).hexdigest()

    def _mint(self, purpose: str) -> str:
        issued, nonce = int(self.clock()), secrets.token_urlsafe(16)
        return f"{issued}.{nonce}.{self._sign(purpose, issued, nonce)}"

    def _valid(self, purpose: str, value: str, max_age: int) -> tuple[int, str] | None:
        if self._key is None or not value:
            return None
        try:
            issued_text, nonce, mac = value.split(".")
            issued = int(issued_text)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._sign(purpose, issued, nonce)):
            return None
        age = self.clock() - issued
        if age < -60 or age > max_age:  # from the future (clock skew allowed) or stale
            return None
        return issued, nonce

    def issue(self) -> str:
        """A fresh CSRF token for one rendered page ("" when read-only)."""
        return self._mint("csrf") if self._key is not None else ""

    def spend_csrf(self, token: str) -> bool:
        """Accept a CSRF token once: signed by this secret, fresh, not used before."""
        found = self._valid("csrf", token, CSRF_MAX_AGE_SECONDS)
        with self._lock:
            now = self.clock()
            for old in [n for n, at in self._spent.items() if now - at > CSRF_MAX_AGE_SECONDS]:
                del self._spent[old]  # past its age it is refused anyway: forget it
            if found is None or found[1] in self._spent:
                return False
            self._spent[found[1]] = found[0]
        return True

    def unlock_refused(self) -> bool:
        """True while UNLOCK_TRIES wrong tokens were given within the last UNLOCK_WINDOW_SECONDS."""
        with self._lock:
            now = self.clock()
            self._wrong = [at for at in self._wrong if now - at < UNLOCK_WINDOW_SECONDS]
            return len(self._wrong) >= UNLOCK_TRIES

    def session(self, token: str) -> str | None:
        """The session cookie's value when `token` is the console token, else None (compared in constant time)."""
        if self._secret is None or self.unlock_refused():
            return None
        if not hmac.compare_digest(token.strip().encode(), self._secret):
            with self._lock:
                self._wrong.append(self.clock())
            return None
        return self._mint("session")

    def has_session(self, cookie: str) -> bool:
        """Whether the cookie is a session this secret signed, not yet expired."""
        return self._valid("session", cookie, SESSION_MAX_AGE_SECONDS) is not None


def own_hosts(bind: str, port: int) -> set[str]:
    """The host:port names of the server's own origin (on loopback, also its other loopback names)."""
    host = f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind
    names = {host}
    if host in LOOPBACK_NAMES:
        names.update(LOOPBACK_NAMES)
    return {f"{n}:{port}" for n in names}


def same_origin(headers: Mapping[str, str], own: set[str]) -> str | None:
    """Why this request is not from the console's own page (None when it is). Header names in lower case."""
    host = headers.get("host", "").strip().lower()
    if host and not host.rsplit("]", 1)[-1].count(":"):
        host += ":80"
    if host not in own:
        return "the Host header is not this server's own address"
    site = headers.get("sec-fetch-site")
    if site is not None and site.lower() != "same-origin":
        return f"Sec-Fetch-Site is {site!r}, not 'same-origin'"
    origin = headers.get("origin")
    if origin is not None:  # "null" (a sandboxed frame, a data: page) is not us either
        ours = origin.lower().startswith("http://") and _host_of(origin) == host
        return None if ours else "the Origin header names another site"
    referer = headers.get("referer")
    if referer:
        return None if _host_of(referer) == host else "the Referer header names another site"
    return "neither Origin nor Referer was sent"


def _host_of(url: str) -> str:
    parts = urlsplit(url.strip())
    port = parts.port or (443 if parts.scheme == "https" else 80)
    name = parts.hostname or ""
    name = f"[{name}]" if ":" in name else name
    return f"{name}:{port}".lower()


def cookie_name(port: int) -> str:
    """The session cookie's name for the console on `port`."""
    return COOKIE.format(port=port)


def cookie_of(header: str, name: str) -> str:
    """The value of cookie `name` in a Cookie header ("" when absent)."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""
