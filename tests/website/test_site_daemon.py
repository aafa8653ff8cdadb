"""`selfpub run` serves the site on its own listener when [site] is enabled, and stops it cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import urllib.error
import urllib.request

from tests.daemon.conftest import spawn, write_config  # noqa: F401 - the fixture, and the config writer
from tests.website.conftest import ARTICLES, HELD_TITLE, PUBLIC_URL, make_state


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_selfpub_run_serves_the_site_apart_from_the_status_page_and_stops_it_on_sigterm(tmp_path, spawn):  # noqa: F811
    state = asyncio.run(make_state(tmp_path))  # published articles in tmp_path/state
    slug = state.slugs[ARTICLES[0][0]]
    state.engine.dispose()
    config = write_config(tmp_path / "selfpub.toml", tmp_path / "state",
                          f'[site]\nenabled = true\nport = 0\npublic_url = "{PUBLIC_URL}"\n')
    d = spawn(config, "--fake-cycle-seconds", "0.2")
    site = d.wait_log(lambda r: r.get("msg") == "site listening")
    status_port = d.port()
    assert site["bind"] == "127.0.0.1" and int(site["port"]) != status_port
    port = int(site["port"])
    code, index = _get(port, "/")
    assert code == 200 and ARTICLES[0][0] in index and HELD_TITLE not in index
    assert _get(port, f"/a/{slug}")[0] == 200
    assert _get(port, "/healthz")[0] == 404  # the status page's routes are not on the site
    assert _get(status_port, "/healthz")[0] in (200, 503)  # the status page answers on its own port (paused: 503)
    assert _get(status_port, f"/a/{slug}")[0] == 404
    d.signal(signal.SIGTERM)
    assert d.wait(30) == 0
    assert any(r.get("msg") == "site stopped" for r in d.lines())
