"""The guards of tests/conftest.py hold in every folder of the suite, not only tests/agents: no real model
call and no embedded model start unless a test is marked real_llm."""

from __future__ import annotations

import subprocess
import sys

import httpx
import httpx2
import pytest

from tests.conftest import EMBEDDED_SERVER_MODULE

CLOSED = "http://127.0.0.1:9/v1/chat/completions"  # nothing listens on port 9: a real request would be refused


def test_a_sync_httpx_llm_request_is_refused_outside_tests_agents() -> None:
    with httpx.Client() as http, pytest.raises(RuntimeError, match="real_llm"):
        http.post(CLOSED, json={})


async def test_an_async_httpx2_llm_request_is_refused_outside_tests_agents() -> None:
    async with httpx2.AsyncClient() as http:
        with pytest.raises(RuntimeError, match="real_llm"):
            await http.post(CLOSED, json={})


def test_other_requests_pass_the_llm_switch() -> None:
    with httpx.Client() as http, pytest.raises(httpx.ConnectError):
        http.get("http://127.0.0.1:9/v1/models")  # not a completion: reaches the (closed) port


def test_starting_the_embedded_model_is_refused_without_the_marker() -> None:
    with pytest.raises(RuntimeError, match="real_llm"):
        subprocess.Popen([sys.executable, "-m", EMBEDDED_SERVER_MODULE, "--help"])  # noqa: S603


@pytest.mark.real_llm
def test_a_real_llm_test_may_call_a_model_endpoint() -> None:
    with httpx.Client() as http, pytest.raises(httpx.ConnectError):
        http.post(CLOSED, json={})  # let through: refused by the closed port, not by the switch
