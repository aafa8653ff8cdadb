"""kernel.http: one Retry-After reader for every client; it never raises and stays within [0, cap]."""

from __future__ import annotations

from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.http import MAX_RETRY_AFTER_SECONDS, retry_after_from, retry_after_seconds

NOW = 1445412470.0  # 2015-10-21 07:27:50 UTC


def test_seconds_dates_and_garbage():
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds(" 2.5 ") == 2.5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=NOW) == pytest.approx(10)
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 -0000", now=NOW) == pytest.approx(10)  # no zone: UTC
    for absent in (None, "", "   ", "soon", "-5", "inf", "nan", "1e3", "0x10", "Wed, 99 Oct 2015 07:28:00 GMT"):
        assert retry_after_seconds(absent, now=NOW) is None, absent


def test_a_date_in_the_past_is_zero_and_a_long_ask_is_capped():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:00:00 GMT", now=NOW) == 0.0
    assert retry_after_seconds("999999999999") == MAX_RETRY_AFTER_SECONDS
    assert retry_after_seconds("120", cap=60) == 60
    assert retry_after_seconds("Thu, 01 Jan 9999 00:00:00 GMT", now=NOW, cap=30) == 30


def test_headers_prefer_retry_after_ms():
    assert retry_after_from({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_from({"retry-after-ms": "later", "retry-after": "9"}) == 9
    assert retry_after_from({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=NOW) == pytest.approx(10)
    assert retry_after_from({}) is None
    assert retry_after_from(None) is None


@settings(max_examples=300, deadline=None)
@given(st.text(), st.floats(min_value=0, max_value=4e9), st.floats(min_value=0, max_value=1e6))
def test_any_header_string_never_raises_and_is_bounded(value: str, now: float, cap: float):
    got = retry_after_seconds(value, now=now, cap=cap)
    assert got is None or 0.0 <= got <= cap


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(timezone.utc)),
       st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(timezone.utc)))
def test_http_dates_read_as_seconds_from_now(when: datetime, now: datetime):
    when = when.replace(microsecond=0)  # an HTTP date has whole seconds
    got = retry_after_seconds(format_datetime(when, usegmt=True), now=now.timestamp())
    expected = min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_SECONDS)
    assert got == pytest.approx(expected, abs=1e-6)
    if when <= now:
        assert got == 0.0


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**30))
def test_delta_seconds_are_read_as_written_up_to_the_cap(n: int):
    assert retry_after_seconds(str(n)) == min(float(n), MAX_RETRY_AFTER_SECONDS)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["retry-after", "retry-after-ms", "x"]), st.text(), max_size=3))
def test_any_headers_never_raise(headers: dict[str, str]):
    got = retry_after_from(headers)
    assert got is None or 0.0 <= got <= MAX_RETRY_AFTER_SECONDS


def test_the_clients_read_it_through_the_kernel():
    """The four readers that were (feeds, LLM provider, chain node, Dev.to) answer as the kernel does."""
    import httpx
    import requests

    from agents.llm.provider import retry_after_from as provider_reads
    from wallet.chain import retry_after_seconds as chain_reads

    assert provider_reads is retry_after_from
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert chain_reads(response) == 0.0  # long past
    response.headers["Retry-After"] = "12"
    assert chain_reads(response) == 12
    response.status_code = 500
    assert chain_reads(response) is None  # only a 429/503 asks us to wait
    assert retry_after_from(httpx.Headers({"Retry-After": "3"})) == 3  # case-insensitive headers
