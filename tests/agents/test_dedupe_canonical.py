"""URL canonicalisation and content hashes: one story, one key."""

from __future__ import annotations

import pytest

from agents.dedupe import canonical_url, content_hash, normalise_text, url_key


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("HTTP://Example.COM/Path", "http://example.com/Path"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a?utm_source=rss&utm_medium=feed&id=7", "https://example.com/a?id=7"),
        ("https://example.com/a?fbclid=XYZ&gclid=1&msclkid=2&b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a?z=1&a=2&m=", "https://example.com/a?a=2&m=&z=1"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("https://EXAMPLE.com./a", "https://example.com/a"),
        ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        ("http://[::1]:8080/feed", "http://[::1]:8080/feed"),
    ],
)
def test_canonical_url(raw: str, canonical: str) -> None:
    assert canonical_url(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    ["", "javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", "ftp://example.com/x", "/relative/path",
     "mailto:a@example.com", "https://user:pw@example.com/", "http://example.com:99999/", "https:///nohost"],
)
def test_non_http_or_unusable_urls_have_no_canonical_form(raw: str) -> None:
    assert canonical_url(raw) is None


def test_tracking_variants_share_one_url_key() -> None:
    a = canonical_url("https://Example.com/post?id=1&utm_campaign=x#c")
    b = canonical_url("https://example.com:443/post?id=1&gclid=abc")
    assert a == b and url_key(a) == url_key(b) and len(url_key(a)) == 64


def test_content_hash_ignores_case_spacing_and_punctuation() -> None:
    assert content_hash("Rust 2024 Edition!", "Async  closures,\nare stable.") == content_hash(
        "rust 2024 edition", "async closures are stable"
    )
    assert content_hash("Rust 2024 edition", "async closures") != content_hash("Rust 2021 edition", "async closures")


def test_normalise_text_folds_unicode_compatibility_forms() -> None:
    assert normalise_text("Ｆｕｌｌ－width ＡＢＣ") == normalise_text("full width abc")
