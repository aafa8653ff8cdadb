"""The console's write guard (daemon/csrf.py): the token, one-use CSRF tokens that go stale, the page's own origin."""

from __future__ import annotations

from daemon.csrf import (
    CSRF_MAX_AGE_SECONDS, SESSION_MAX_AGE_SECONDS, UNLOCK_TRIES, UNLOCK_WINDOW_SECONDS, Guard, cookie_of, own_hosts,
    same_origin,
)

SECRET = "s3cret-console-token-0123456789"
OWN = own_hosts("127.0.0.1", 8787)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_without_a_token_the_console_is_read_only() -> None:
    guard = Guard(None)
    assert not guard.writable and guard.issue() == ""
    assert not guard.spend_csrf("") and guard.session("") is None and guard.session(SECRET) is None
    assert not guard.has_session("1.a.b")


def test_unlock_needs_the_exact_token() -> None:
    guard = Guard(SECRET)
    assert guard.session("") is None  # missing
    assert guard.session("wrong") is None and guard.session(SECRET + "x") is None and guard.session(SECRET[:-1]) is None
    cookie = guard.session(SECRET)
    assert cookie and SECRET not in cookie and guard.has_session(cookie)
    assert guard.session(f"  {SECRET}\n") is not None  # pasted with a newline


def test_a_session_cookie_is_signed_by_this_token_and_expires() -> None:
    clock = Clock()
    guard = Guard(SECRET, clock=clock)
    cookie = guard.session(SECRET)
    assert cookie is not None
    assert not Guard("another-token-of-another-daemon", clock=clock).has_session(cookie)
    issued, nonce, mac = cookie.split(".")
    assert not guard.has_session(f"{int(issued) + 1}.{nonce}.{mac}")  # tampered
    assert not guard.has_session(guard.issue())  # a CSRF token is not a session
    clock.now += SESSION_MAX_AGE_SECONDS + 1
    assert not guard.has_session(cookie)


def test_a_csrf_token_works_once() -> None:
    guard = Guard(SECRET)
    token = guard.issue()
    assert guard.spend_csrf(token)
    assert not guard.spend_csrf(token)  # replayed
    assert guard.spend_csrf(guard.issue())  # a fresh page's token still works


def test_a_stale_csrf_token_is_refused_even_unused() -> None:
    clock = Clock()
    guard = Guard(SECRET, clock=clock)
    token = guard.issue()
    clock.now += CSRF_MAX_AGE_SECONDS + 1
    assert not guard.spend_csrf(token)
    fresh = guard.issue()
    assert guard.spend_csrf(fresh)
    clock.now += CSRF_MAX_AGE_SECONDS + 1
    assert guard.issue() and not guard.spend_csrf(fresh)  # spent ones are forgotten only once they are stale anyway
    assert guard._spent == {}


def test_a_csrf_token_of_another_secret_or_forged_is_refused() -> None:
    guard = Guard(SECRET)
    assert not guard.spend_csrf(Guard("some-other-token-value-here").issue())
    issued, nonce, mac = guard.issue().split(".")
    assert not guard.spend_csrf(f"{issued}.{nonce}x.{mac}")
    assert not guard.spend_csrf(f"{issued}.{nonce}.{'0' * len(mac)}")
    for junk in ("", "abc", "1.2", "x.y.z", "1.2.3.4"):
        assert not guard.spend_csrf(junk)


def test_same_origin_accepts_the_page_itself() -> None:
    page = {"host": "127.0.0.1:8787", "origin": "http://127.0.0.1:8787", "sec-fetch-site": "same-origin"}
    assert same_origin(page, OWN) is None
    assert same_origin({"host": "127.0.0.1:8787", "referer": "http://127.0.0.1:8787/?done=approved"}, OWN) is None
    assert same_origin({"host": "localhost:8787", "origin": "http://localhost:8787"}, OWN) is None


def test_same_origin_refuses_other_sites() -> None:
    def why(**headers: str) -> str | None:
        return same_origin({"host": "127.0.0.1:8787", **headers}, OWN)

    assert "Origin" in why(origin="http://evil.example")
    assert "Origin" in why(origin="http://127.0.0.1:9999")  # another local service's page
    assert "Origin" in why(origin="https://127.0.0.1:8787")
    assert "Origin" in why(origin="null")  # a sandboxed frame or a data: page
    assert "Origin" in why(origin="http://evil.example", referer="http://127.0.0.1:8787/")  # Origin decides
    assert "Referer" in why(referer="http://evil.example/page")
    assert "neither" in why()
    assert "Sec-Fetch-Site" in why(origin="http://127.0.0.1:8787", **{"sec-fetch-site": "cross-site"})
    assert "Sec-Fetch-Site" in why(origin="http://127.0.0.1:8787", **{"sec-fetch-site": "same-site"})


def test_a_rebound_host_name_is_not_our_origin() -> None:
    # DNS rebinding: evil.example resolves to 127.0.0.1, so Origin and Host agree with each other, not with us.
    headers = {"host": "evil.example:8787", "origin": "http://evil.example:8787", "sec-fetch-site": "same-origin"}
    assert "Host" in same_origin(headers, OWN)
    assert "Host" in same_origin({"origin": "http://127.0.0.1:8787"}, OWN)


def test_own_hosts_and_cookies() -> None:
    assert own_hosts("127.0.0.1", 1) == {"127.0.0.1:1", "localhost:1", "[::1]:1"}
    assert own_hosts("192.0.2.7", 80) == {"192.0.2.7:80"}
    assert own_hosts("::1", 5) == {"127.0.0.1:5", "localhost:5", "[::1]:5"}
    assert same_origin({"host": "192.0.2.7", "origin": "http://192.0.2.7"}, own_hosts("192.0.2.7", 80)) is None
    assert cookie_of("a=1; selfpub_console_8787=v.w.x; b=2", "selfpub_console_8787") == "v.w.x"
    assert cookie_of("selfpub_console_8788=v", "selfpub_console_8787") == ""


def test_guessing_the_token_is_throttled() -> None:
    clock = Clock()
    guard = Guard(SECRET, clock=clock)
    for i in range(UNLOCK_TRIES):
        assert not guard.unlock_refused()
        assert guard.session(f"guess-{i}") is None
    assert guard.unlock_refused() and guard.session(SECRET) is None  # even the right one, for now
    clock.now += UNLOCK_WINDOW_SECONDS
    assert not guard.unlock_refused() and guard.session(SECRET) is not None
