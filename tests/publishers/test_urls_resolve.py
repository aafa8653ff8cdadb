"""URL resolution as a browser does it: fixed vectors, and a differential run against Node's WHATWG URL."""

from __future__ import annotations

import html
import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from publishers.urls import LinkPolicy, resolve, text_links
from tests.agents.link_corpus import ALLOWED_SPELLINGS, FOREIGN_SPELLINGS

PAGE = "https://dev.to/me/article-1"
REPEATS = 12  # mutations per spelling in the Node differential
POLICY = LinkPolicy(sources=("https://src.example/post",), platforms=("https://dev.to", "https://bsky.app"), base=PAGE)


@pytest.mark.parametrize(("raw", "expected"), [
    ("//evil.example/x", "https://evil.example/x"),
    ("/\\evil.example/x", "https://evil.example/x"),
    ("\\\\evil.example/x", "https://evil.example/x"),
    ("https:\\\\evil.example\\x", "https://evil.example/x"),
    ("https:/\\evil.example/x", "https://evil.example/x"),
    ("http:evil.example/x", "http://evil.example/x"),  # another scheme than the page's takes a host
    ("https:evil.example/x", "https://dev.to/me/evil.example/x"),  # the page's scheme: a relative path
    ("\x00 \t https://evil.example/x \x1f", "https://evil.example/x"),
    ("ht\ttps://evil.example/x", "https://evil.example/x"),
    ("HTTPS://EVIL.EXAMPLE./x", "https://evil.example/x"),
    ("https://ev%69l.example/x", "https://evil.example/x"),
    ("https://ｅｖｉｌ.example/x", "https://evil.example/x"),
    ("https://еvil.example/x", "https://xn--vil-qdd.example/x"),
    ("https://dev.to:443/a/./b/../c", "https://dev.to/a/c"),
    ("https://dev.to/a/%2e%2E/c", "https://dev.to/c"),
    ("../../x?q=1#f", "https://dev.to/x?q=1"),
    ("?page=2", "https://dev.to/me/article-1?page=2"),
    ("https://dev.to/a b", "https://dev.to/a%20b"),
    ("java\tscript:alert(1)", "javascript:alert(1)"),
    ("JAVASCRIPT:alert(1)", "javascript:alert(1)"),
    ("https://evil.example?u=https:/\\src.example", "https://evil.example/?u=https:/\\src.example"),  # found by Node
])
def test_resolve_follows_the_browser(raw, expected):
    assert str(resolve(raw, PAGE)) == expected


@pytest.mark.parametrize("raw", ["https://", "https://evil.example:99999/", "https://a b.example/", "https://%zz/",
                                 "https://[::1/", "https://ex%00ample.com/"])
def test_unparseable_urls_resolve_to_nothing_and_are_refused(raw):
    assert resolve(raw, PAGE) is None
    assert POLICY.refusal(raw)


def test_policy_allows_sources_and_platform_hosts_only():
    assert POLICY.allows("https://src.example/post/") and POLICY.allows("https://SRC.example/post#x")
    assert POLICY.allows("/t/rust") and POLICY.allows("https://bsky.app/profile/x")
    for raw in ("https://src.example/other", "https://src.example/post?x=1", "http://src.example/post",
                "https://dev.to@evil.example/", "https://user@dev.to/", "https://dev.to:8443/", "mailto:a@dev.to",
                "https://src.example:444/post", "//evil.example", "data:text/html,x"):
        assert not POLICY.allows(raw), raw
    assert "user name" in POLICY.refusal("https://x@src.example/post")
    assert "javascript:" in POLICY.refusal(" javascript:alert(1)")
    assert LinkPolicy().refusal("/relative")  # no platform page: a relative link cannot be placed


def test_text_links_follow_bluesky_detection():
    text = "a https://x.com/y. b (evil.com/p) c Node.js d ASP.NET e foo.zip, f 1.2.3 g mid-word.com h"
    assert [u for _, _, u in text_links(text)] == [
        "https://x.com/y", "https://evil.com/p", "https://ASP.NET", "https://foo.zip"]
    start, end, _ = text_links(text)[0]
    assert text[start:end] == "https://x.com/y"


# -- differential: Node's WHATWG URL is the browser's parser -------------------------------------------

_SCRIPT = """
import { createInterface } from "node:readline";
for await (const line of createInterface({ input: process.stdin })) {
  const [input, base] = JSON.parse(line);
  try {
    const u = base === null ? new URL(input) : new URL(input, base);
    console.log(JSON.stringify({ok: true, protocol: u.protocol, hostname: u.hostname, port: u.port,
      pathname: u.pathname, search: u.search, userinfo: !!(u.username || u.password)}));
  } catch (e) { console.log(JSON.stringify({ok: false})); }
}
"""


def _node() -> str | None:
    peer = Path(__file__).resolve().parents[2] / "build" / "node" / "pds" / "node"
    return str(peer) if peer.exists() else shutil.which("node")


def _inputs() -> list[tuple[str, str | None]]:
    rnd = random.Random(13)
    spellings = [html.unescape(s) for s in FOREIGN_SPELLINGS + ALLOWED_SPELLINGS]
    extra = ["https://a.example:0080/x", "https://[::1]:8080/x", "https://a.example:/x", "HtTp://A.EXAMPLE",
             "https://a.example/%2e%2e/x", "https://a.example/a/..%2f/x", "https://a.example\\@b.example/",
             "https://a@b@c.example/", "https://a.example?x#y", "//a.example?x", "\\\\a.example#x", "https:\\a.example",
             "/\\/a.example", "/./\\a.example", "https://xn--e1afmkfd.example/", "https://ß.example/", "https://a.example.:443/"]
    out: list[tuple[str, str | None]] = []
    for s in spellings + extra:
        for _ in range(REPEATS):
            chars = []
            for c in s:
                op = rnd.randrange(12)
                if op == 0:
                    chars.append(rnd.choice(["\t", "\n", "\r", " ", "\x00", "\x1f"]) + c)
                elif op == 1 and c.isalpha():
                    chars.append(c.swapcase())
                elif op == 2 and c == "/":
                    chars.append(rnd.choice(["\\", "//", "/\\"]))
                elif op == 3 and c.isalnum():
                    chars.append(f"%{ord(c):02X}")
                else:
                    chars.append(c)
            out.append(("".join(chars), rnd.choice([PAGE, "https://dev.to/", "http://dev.to/x/", None])))
        out += [(s, PAGE), (s, None)]
    return out


def test_resolution_matches_node_whatwg_url(tmp_path):
    node = _node()
    if node is None:
        pytest.skip("no Node.js (the PDS peer brings one: tests/peers/setup.sh)")
    script = tmp_path / "whatwg.mjs"
    script.write_text(_SCRIPT)
    inputs = _inputs()
    assert len(inputs) >= 75 * REPEATS
    lines = "".join(json.dumps(pair) + "\n" for pair in inputs)
    done = subprocess.run([node, str(script)], input=lines, capture_output=True, text=True, timeout=120, check=True)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(inputs)
    unsafe, refused = [], []
    for (raw, base), want in zip(inputs, answers):
        got = resolve(raw, base)
        if not want["ok"]:
            continue  # the browser follows nothing
        scheme = want["protocol"][:-1]
        if scheme not in ("http", "https"):
            if got is not None and got.web:
                unsafe.append((raw, base, "web here, not in the browser", want))
            continue
        if got is None or not got.web:
            refused.append((raw, base, want))  # we refuse what a browser would open (e.g. host "."): safe
            continue
        port = int(want["port"]) if want["port"] else None
        same = (got.scheme, got.host, got.port, got.userinfo) == (
            scheme, want["hostname"].removesuffix("."), port, want["userinfo"])
        same_page = got.path == want["pathname"] and (got.query or "") == want["search"][1:]
        if not same or not same_page:
            unsafe.append((raw, base, str(got), want))
    assert not unsafe, f"{len(unsafe)} of {len(inputs)} differ, e.g. {unsafe[:5]}"
    assert len(refused) <= len(inputs) // 100, refused[:5]
