"""The site survives bad paths and floods: traversal, huge paths and heads, bad UTF-8, slow and idle clients."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.website.conftest import PublishedState, base_url, raw, status_of
from website.server import MAX_CONNECTIONS, MAX_HEAD_BYTES, BoundedH11


def _get(path: bytes, headers: bytes = b"") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: site\r\nConnection: close\r\n" + headers + b"\r\n"


async def test_traversal_paths_are_404_and_leak_nothing(site):
    for path in (b"/a/../../etc/passwd", b"/a/..%2F..%2Fetc%2Fpasswd", b"/a/%2e%2e/%2e%2e/etc/passwd",
                 b"/../../../../etc/passwd", b"/a/....//....//etc/passwd", b"/api/briefs/..%5c..%5cwin.ini",
                 b"/a/%2e%2e", b"//etc/passwd", b"/a/x%00y"):
        answer = await raw(site, _get(path))
        assert status_of(answer) in (400, 404), path
        assert b"root:" not in answer and b"Traceback" not in answer, path


async def test_bad_utf8_in_the_path_is_400(site):
    for path in (b"/a/%ff%fe", b"/a/caf%c3", b"/a/%c0%ae%c0%ae", b"/%ed%a0%80"):
        answer = await raw(site, _get(path))
        assert status_of(answer) == 400 and answer.endswith(b"bad request\n"), path


async def test_raw_non_ascii_bytes_in_the_request_line_are_refused(site, published_state: PublishedState):
    answer = await raw(site, _get(b"/a/\xff\xfe"))
    assert answer == b"" or status_of(answer) == 400
    async with httpx.AsyncClient(base_url=base_url(site)) as client:  # and the site keeps serving
        assert (await client.get("/")).status_code == 200


async def test_huge_paths_are_404_and_huge_heads_are_refused(site):
    answer = await raw(site, _get(b"/a/" + b"x" * 5_000))
    assert status_of(answer) == 404 and answer.endswith(b"not found\n")
    for big in (_get(b"/", b"X-Big: " + b"y" * (MAX_HEAD_BYTES + 1) + b"\r\n"),  # one header, in one read
                _get(b"/", b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEAD_BYTES // 8))),  # many headers
                _get(b"/" + b"z" * (MAX_HEAD_BYTES + 1)),  # the request line
                _get(b"/", b"X-Huge: " + b"w" * 2_000_000 + b"\r\n")):  # arrives in many reads
        answer = await raw(site, big)
        assert status_of(answer) in (400, 431), big[:40]
    assert status_of(await raw(site, _get(b"/"))) == 200


async def test_a_body_on_get_is_never_read_into_memory_without_bound(site):
    head = b"GET / HTTP/1.1\r\nHost: site\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n"
    answer = await raw(site, head + b"x" * 65_536)
    assert status_of(answer) == 200


async def test_a_client_trickling_its_head_is_cut_off(site, monkeypatch):
    monkeypatch.setattr(BoundedH11, "head_timeout", 0.5)
    host, port = site.address
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    writer.write(b"GET / HTTP/1.1\r\n")
    await writer.drain()
    closed = False
    try:
        for _ in range(40):  # a header byte every 0.1 s: never a whole head
            await asyncio.sleep(0.1)
            writer.write(b"X")
            await writer.drain()
            if reader.at_eof():
                closed = True
                break
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    if not closed:
        closed = await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert closed and time.monotonic() - started < 3.5


async def test_an_idle_connection_is_closed_and_a_kept_alive_one_too(site, monkeypatch):
    monkeypatch.setattr(BoundedH11, "head_timeout", 0.5)
    host, port = site.address
    reader, writer = await asyncio.open_connection(host, port)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # said nothing: closed after the head timeout
    writer.close()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /sitemap.xml HTTP/1.1\r\nHost: site\r\n\r\n")  # keep-alive, then silence
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"</urlset>")
    writer.close()


async def test_a_flood_of_connections_gets_503_past_the_limit_and_the_site_recovers(site):
    host, port = site.address
    held = [await asyncio.open_connection(host, port) for _ in range(MAX_CONNECTIONS)]
    try:
        answer = await raw(site, _get(b"/"))
        assert status_of(answer) == 503
    finally:
        for _, w in held:
            w.close()
    await asyncio.sleep(0.3)
    assert status_of(await raw(site, _get(b"/"))) == 200


class _Broken:
    """A content source whose database went away."""

    def listing(self):  # noqa: ANN201
        raise RuntimeError("database at /var/lib/selfpub/selfpub.db is locked: SECRET-STATE")

    article = articles = lambda self, _x: self.listing()  # noqa: E731


async def test_a_failure_inside_is_a_tiny_500_that_says_nothing(published_state: PublishedState):
    from website import SiteServer, build_site_app

    server = SiteServer(build_site_app(_Broken(), published_state.settings), "127.0.0.1", 0)
    await server.start()
    try:
        for path in (b"/", b"/a/some-slug", b"/feed.atom", b"/sitemap.xml"):
            answer = await raw(server, _get(path))
            assert status_of(answer) == 500 and answer.endswith(b"\r\n\r\ninternal error\n"), path
            assert b"SECRET-STATE" not in answer and b"Traceback" not in answer and b"selfpub.db" not in answer
    finally:
        await server.stop()
