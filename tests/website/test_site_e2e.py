"""End to end: the real orchestrator under `selfpub run` publishes a feed item, and the daemon's own site serves it.

The usage-reporting LLM stand-in writes the article, the local outbox publishes it; the test then
reads the article on the site, and its canonical URL in the published file's front matter.
"""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request

import frontmatter
import pytest

from tests.agents.feeds_support import FeedServer
from tests.daemon.conftest import spawn  # noqa: F401 - the fixture
from tests.daemon.cycle_support import CR, GatedLLM, fund, news_feed, query, write_config

pytestmark = pytest.mark.timeout(240)
PUBLIC = "https://notes.example.test"


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_an_article_the_daemon_publishes_is_on_its_site_with_the_site_as_canonical(sqlite_url, tmp_path, spawn):  # noqa: F811
    feeds = FeedServer().start()
    llm = GatedLLM(delay=0.0, hold=5)
    try:
        feed_url = news_feed(feeds, 1)
        with llm.running():
            config = write_config(tmp_path, sqlite_url, llm.url, feed_url,
                                  wallet=f'[site]\nenabled = true\nport = 0\npublic_url = "{PUBLIC}"\n')
            fund(sqlite_url, 20 * CR)
            daemon = spawn(config, "--fast-seconds", "1")
            port = int(daemon.wait_log(lambda r: r.get("msg") == "site listening", timeout=60)["port"])
            deadline = time.monotonic() + 150
            rows: list = []
            while time.monotonic() < deadline and daemon.proc.poll() is None:
                rows = query(sqlite_url, "SELECT key, slug FROM publishers_slug")
                done = query(sqlite_url, "SELECT count(*) FROM task WHERE status = 'published'")[0][0]
                if rows and done:
                    break
                time.sleep(0.5)
            assert rows, daemon.text()[-3000:]
            (key, slug), = rows
            time.sleep(5.5)  # the site's listing is cached for 5 s
            code, index = _get(port, "/")
            page_code, page = _get(port, f"/a/{slug}")
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(60) == 0, daemon.text()[-3000:]
    finally:
        feeds.stop()
    assert code == 200 and f'href="/a/{slug}"' in index
    assert page_code == 200 and "credits</strong>" in page
    assert "<strong>0.000000 credits</strong>" not in page  # the stand-in's tokens were booked against the task
    (published,) = (tmp_path / "state" / "outbox").glob("*.md")
    meta = frontmatter.load(published)
    assert meta["key"] == key and meta["canonical_url"] == f"{PUBLIC}/a/{slug}"
    assert meta["link_url"] == f"{PUBLIC}/a/{slug}"
