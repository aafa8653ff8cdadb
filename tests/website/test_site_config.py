"""[site] settings: defaults, a checked public URL, unknown keys refused, each problem named with its fix."""

from __future__ import annotations

from pathlib import Path

from config.loader import load_settings
from tests.test_config import problems_of, write


def test_defaults_keep_the_site_off_on_127_0_0_1_8788(tmp_path: Path) -> None:
    site = load_settings(write(tmp_path, ""), {}).site
    assert (site.enabled, site.bind, site.port, site.public_url, site.title) == (False, "127.0.0.1", 8788, None, "selfpub")


def test_a_good_site_section_loads_with_the_trailing_slash_dropped(tmp_path: Path) -> None:
    text = '[site]\nenabled = true\nport = 0\npublic_url = "https://example.com/blog/"\ntitle = "Notes"\n'
    site = load_settings(write(tmp_path, text), {}).site
    assert site.enabled and site.port == 0 and site.public_url == "https://example.com/blog" and site.title == "Notes"


def test_bad_values_are_refused_with_the_key_and_a_fix(tmp_path: Path) -> None:
    found = problems_of(write(tmp_path, '[site]\npublic_url = "example.com"\nport = 70000\nbogus = 1\ntitle = ""\n'))
    assert set(found) >= {"site.public_url", "site.port", "site.bogus", "site.title"}
    assert "https://example.com" in found["site.public_url"]  # the fix names the URL it meant


def test_a_public_url_with_a_query_fragment_or_user_is_refused(tmp_path: Path) -> None:
    for bad in ("https://example.com/?x=1", "https://example.com/#top", "https://me@example.com", "ftp://example.com"):
        found = problems_of(write(tmp_path, f'[site]\npublic_url = "{bad}"\n'))
        assert "site.public_url" in found, bad


def test_the_site_may_not_share_the_status_pages_listener(tmp_path: Path) -> None:
    found = problems_of(write(tmp_path, '[http]\nport = 9000\n[site]\nenabled = true\nport = 9000\n'))
    assert "site.port" in found and "status page" in found["site.port"]
    ok = '[http]\nport = 9000\n[site]\nenabled = true\nport = 9001\n'
    assert load_settings(write(tmp_path, ok), {}).site.port == 9001
