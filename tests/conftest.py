"""Shared fixtures and the guards every test runs under.

    no internet        socket connect to anything but loopback raises
    no real model      an LLM request (chat/completions, completions, embeddings) over a real httpx or
                       httpx2 transport, or starting the embedded model's server (llama_cpp.server), raises
                       unless the test is marked @pytest.mark.real_llm (FakeOpenAI servers are let through)
    stay in the repo   an audit hook records every file opened or folder listed beside the repository
                       (tmp, the venv, the system Python and tool state excepted): the test that did it fails,
                       and the session fails for what happened outside a test (at collection)
    databases          sqlite_url, pg_url (a fresh schema on the real PostgreSQL), db_url (both), engine
"""

from __future__ import annotations

import ipaddress
import os
import site
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from sqlalchemy import Engine, text

from kernel.db import make_engine
from tests.fakes.openai import SERVING

# Fixtures of the peers every room's tests may use: x402_node, x402_peer (tests/peers/x402.py).
pytest_plugins = ("tests.peers.x402",)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"  # vendored test data (specs, corpus): a clone tests itself
PG_URL = os.environ.get("SELFPUB_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

# -- settings snapshots stay in the session's temporary folder ------------------------

# The CLI keeps a snapshot of each config's validated settings (config/snapshot.py) in
# $XDG_CACHE_HOME/selfpub; under test, in one folder of the session, inherited by every subprocess.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="selfpub-test-cache-")


# -- no test reaches the internet ---------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(address: object) -> None:
    if not isinstance(address, tuple) or not address:
        return  # unix sockets
    host = address[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host in ("localhost",):
            return
        raise RuntimeError(f"tests may not reach the network: connect to {host!r}") from None
    if not ip.is_loopback:
        raise RuntimeError(f"tests may not reach the network: connect to {host}")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check_address(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check_address(address)
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


# -- no real model calls unless a test asks ----------------------------------------

LLM_PATHS = ("/chat/completions", "/completions", "/embeddings")
EMBEDDED_SERVER_MODULE = "llama_cpp.server"  # what agents' EmbeddedServer runs as a child process


class _Switch:
    """Whether the running test may call a real model: set from its marker before its fixtures are set up."""

    real_llm = False


SWITCH = _Switch()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    SWITCH.real_llm = item.get_closest_marker("real_llm") is not None


def pytest_runtest_teardown(item: pytest.Item) -> None:  # noqa: ARG001
    SWITCH.real_llm = False


def _guard_llm(url: Any) -> None:  # noqa: ANN401 - an httpx or httpx2 URL
    if SWITCH.real_llm or not str(url.path).endswith(LLM_PATHS):
        return
    if f"{url.host}:{url.port}" in SERVING:
        return
    raise RuntimeError(
        f"a unit test tried a real LLM endpoint ({url.scheme}://{url.host}:{url.port}{url.path}); "
        "use tests.fakes.openai.FakeOpenAI or mark the test @pytest.mark.real_llm"
    )


def _install_llm_guard() -> None:
    for module in (httpx, httpx2):
        real_async = module.AsyncHTTPTransport.handle_async_request
        real_sync = module.HTTPTransport.handle_request

        async def guarded_async(self, req, _real=real_async):  # noqa: ANN001, ANN202
            _guard_llm(req.url)
            return await _real(self, req)

        def guarded_sync(self, req, _real=real_sync):  # noqa: ANN001, ANN202
            _guard_llm(req.url)
            return _real(self, req)

        module.AsyncHTTPTransport.handle_async_request = guarded_async  # type: ignore[method-assign]
        module.HTTPTransport.handle_request = guarded_sync  # type: ignore[method-assign]


_install_llm_guard()


# -- no test reads beside the repository --------------------------------------------

BESIDE = str(REPO.parent).rstrip(os.sep) + os.sep  # outside-ok: the place this guard watches
INSIDE = str(REPO) + os.sep
OUTSIDE: list[str] = []  # what was opened beside the repository, in order (the guard's findings)
_PLACES = {
    os.path.join(p, "") for p in (
        tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev", "/proc", "/sys", "/usr", "/etc", "/run",
        sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
        *site.getsitepackages(), site.getusersitepackages(),
    ) if p
}
# A clone inside /tmp/x/ is still watched beside it: a place that holds the repository's folder is no excuse.
_ALLOWED = tuple(sorted(p for p in _PLACES if p == BESIDE or not BESIDE.startswith(p)))
# False when the repository sits right in such a place (/tmp/selfpub): then nothing beside it can be told apart.
WATCHING = BESIDE != os.sep and not BESIDE.startswith(_ALLOWED)
_WATCHED = {"open", "os.listdir", "os.scandir"}


def outside_repository(path: str) -> bool:
    """True for a path beside the repository that no test may touch (tool state and system places excepted)."""
    if not path.startswith(BESIDE) or path.startswith(INSIDE) or path == INSIDE[:-1] or path.startswith(_ALLOWED):
        return False
    first = path[len(BESIDE):].split(os.sep, 1)[0]
    return not first.startswith(".")  # .cache, .hypothesis, .pyenv: tools' state, not test data


def _audit(event: str, args: tuple) -> None:
    if event in _WATCHED:
        target = args[0] if args else None
        if isinstance(target, int) or target is None:
            return  # a file descriptor: its path was checked when it was opened
        path = os.fsdecode(target)
        if not os.path.isabs(path):
            path = os.path.abspath(path)
        if outside_repository(path):
            OUTSIDE.append(path)
    elif event == "subprocess.Popen" and not SWITCH.real_llm:
        argv = args[1] if len(args) > 1 else None
        if isinstance(argv, (list, tuple)) and any(EMBEDDED_SERVER_MODULE == os.fsdecode(a) for a in argv
                                                   if isinstance(a, (str, bytes))):
            raise RuntimeError("a unit test tried to start the embedded model; mark it @pytest.mark.real_llm")


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def _stay_in_repository() -> Iterator[None]:
    """Fail the test that opened a file beside the repository (a clone has nothing there)."""
    before = len(OUTSIDE)
    yield
    if len(OUTSIDE) > before:
        found = sorted(set(OUTSIDE[before:]))
        pytest.fail(f"the test read outside the repository: {', '.join(found)}; vendor what it needs under tests/data",
                    pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:  # noqa: ARG001
    if OUTSIDE:  # also what no test did (module imports at collection): the run fails
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:  # noqa: ANN401
    if OUTSIDE:
        terminalreporter.section("files opened beside the repository (vendor them under tests/data)", red=True)
        for path in sorted(set(OUTSIDE)):
            terminalreporter.write_line(path)


# -- databases ---------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file URL."""
    return f"sqlite:///{tmp_path / 'selfpub.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the real PostgreSQL server, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL, pool=False)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on db_url, disposed afterwards."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()
