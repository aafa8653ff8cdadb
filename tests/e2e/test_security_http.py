"""Security audit of the status/metrics server, against the real daemon (`selfpub run`) as a subprocess.

After a real cycle with real-looking secrets (fake LLM and spec-checking Dev.to stand-ins on 127.0.0.1):
the server listens on loopback only unless http.bind says otherwise; it answers GET only and refuses
every other method (HEAD included) with 405 without changing anything in the state, but for POST on
the console's write paths, refused 403 (or 415) when no console token is configured; unknown paths
are 404; no page, header or error body carries a secret.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.agents.feeds_support import FeedServer, rss
from tests.daemon.conftest import REPO, Daemon
from tests.e2e.support import ForemServer, Secrets, cli_env, cycle_config, fooled_model, leaks
from tests.fakes.openai import FakeOpenAI

pytestmark = pytest.mark.timeout(300)

REFUSED = ("HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "get", "FOO")
PAGES = ("/", "/index.html", "/metrics", "/healthz", "/metrics?format=json", "/?q=1")
UNKNOWN = ("/nope", "/admin", "/api/deposit", "/healthz/", "/metrics/", "//", "/static/app.js", "/../etc/passwd",
           "/%2e%2e/%2e%2e/etc/passwd", "/index.htm", "/METRICS", "/selfpub.db", "/state/selfpub.db", "/.env")


# -- talking HTTP by hand (every method, odd targets, nothing normalised by a client library) --------------


def raw_request(port: int, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], bytes]:
    """Send one HTTP/1.1 request on a fresh connection; (status, headers lower-cased, body) of the answer."""
    head = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body:
        head.append(f"Content-Length: {len(body)}")
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    raw_head, _, payload = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    hdrs = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return status, hdrs, payload


# -- what the daemon listens on, from /proc (no connection to any other address needed) --------------------


def _hex_addr(text: str) -> str:
    """An address of /proc/net/tcp{,6} ('0100007F:1F90') as 'ip'."""
    ip_hex, _ = text.split(":")
    raw = bytes.fromhex(ip_hex)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listening(pid: int) -> list[tuple[str, int]]:
    """(ip, port) of every TCP socket the process listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if m := re.fullmatch(r"socket:\[(\d+)\]", target):
            inodes.add(m.group(1))
    out = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                out.append((_hex_addr(cols[1]), int(cols[1].split(":")[1], 16)))
    return out


# -- the state, byte for byte ----------------------------------------------------------------------------


def state_fingerprint(state: Path) -> dict[str, str]:
    """Every file of the state dir (hash) and every row of the database (a dump of a copy: WAL folded in)."""
    out: dict[str, str] = {}
    for p in sorted(state.rglob("*")):
        if p.is_file() and not p.name.startswith("selfpub.db"):
            out[str(p.relative_to(state))] = hashlib.sha256(p.read_bytes()).hexdigest()
    db = state / "selfpub.db"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / db.name
        for suffix in ("", "-wal"):
            if Path(f"{db}{suffix}").exists():
                shutil.copy2(f"{db}{suffix}", f"{copy}{suffix}")
        conn = sqlite3.connect(copy)
        try:
            out["selfpub.db"] = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for t in tables:
                out[f"rows:{t}"] = str(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
        finally:
            conn.close()
    return out


def quiet_fingerprint(state: Path, timeout: float = 60) -> dict[str, str]:
    """The state once it stops changing (the start-up jobs are done): two equal fingerprints 1 s apart."""
    deadline = time.monotonic() + timeout
    last = state_fingerprint(state)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = state_fingerprint(state)
        if now == last:
            return now
        last = now
    raise AssertionError("the daemon's state kept changing; cannot check that a request changes nothing")


# -- a daemon after a real cycle, with secrets ------------------------------------------------------------


class Run:
    def __init__(self, daemon: Daemon, secrets: Secrets, state: Path, forem: ForemServer):
        self.daemon, self.secrets, self.state, self.forem = daemon, secrets, state, forem
        self.port = daemon.port()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    """`selfpub run` on a cycle config (fake LLM, fake Dev.to, local feed), secrets in 0600 files; killed by PID."""
    started: list[Daemon] = []
    stack: list[Callable[[], None]] = []

    def start(http: str = "", name: str = "d") -> Run:
        root = tmp_path / name
        secrets = Secrets.random()
        files = secrets.write(root / "secrets")
        feeds = FeedServer().start()
        stack.append(feeds.stop)
        feed = feeds.add("/feed.xml", rss(
            ("SQLite 3.46 adds JSONB", f"{feeds.base}/a/sqlite", "SQLite stores JSON as binary now."),
            ("Rust 1.80 ships LazyCell", f"{feeds.base}/a/rust", "LazyCell and LazyLock are stable."),
        ))
        llm = FakeOpenAI(default=fooled_model("", writer_payload=False))
        llm_cm = llm.serve()
        llm_url = llm_cm.__enter__()
        stack.append(lambda: llm_cm.__exit__(None, None, None))
        forem = ForemServer(api_key=secrets.devto_api_key)
        forem_cm = forem.running()
        forem_cm.__enter__()
        stack.append(lambda: forem_cm.__exit__(None, None, None))
        extra = f"[http]\nport = 0\n{http}\n" if http else ""
        config = cycle_config(root, feeds=[feed], llm_url=llm_url, forem_url=forem.url, secret_files=files,
                              items_per_cycle=1, max_revisions=0)
        if http:  # replace the [http] table cycle_config writes
            config.write_text(config.read_text().replace("[http]\nport = 0\n", extra))
        (root / "state").mkdir(mode=0o700, exist_ok=True)
        env = {k: v for k, v in cli_env().items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config), "ledger", "deposit", "10"],
                       cwd=REPO, env=env, check=True, capture_output=True, timeout=120)
        d = Daemon(config, [], env, root / "daemon.log")
        started.append(d)
        d.wait_log(lambda r: r.get("msg") == "cycle done", timeout=120)
        return Run(d, secrets, root / "state", forem)

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(10)
        d.fh.close()
    for stop in reversed(stack):
        stop()


def test_status_server_after_a_real_cycle_is_loopback_only_get_only_and_shows_no_secret(start_daemon) -> None:
    run = start_daemon()
    d, port = run.daemon, run.port
    values = run.secrets.values()
    assert len(run.forem.articles) == 1  # a real cycle published, with the real Dev.to key on the wire

    # loopback only: the log line and the kernel's view of the process's listening sockets agree
    assert d.wait_log(lambda r: r.get("msg") == "status server listening")["bind"] == "127.0.0.1"
    socks = listening(d.proc.pid)
    assert (("127.0.0.1", port) in socks) and all(ip == "127.0.0.1" for ip, _ in socks), socks

    # GET answers; everything it shows is free of secrets (bodies and headers)
    seen: dict[str, bytes] = {}
    for path in PAGES:
        status, headers, body = raw_request(port, "GET", path)
        assert status == 200, (path, status, body[:200])
        seen[f"GET {path}"] = body + repr(headers).encode()
    # the pages carry the run's figures (so there was something to leak): spend by agent, state, chart
    assert b'selfpub_spend_credits{agent="writer"}' in seen["GET /metrics"]
    assert b"<svg" in seen["GET /"] and b"RUNNING" in seen["GET /"] and b"(ok)" in seen["GET /"]

    before = quiet_fingerprint(run.state)
    # every other method: 405 with Allow, on known and unknown paths, with and without a body
    for method in REFUSED:
        for path in ("/", "/metrics", "/healthz", "/nope"):
            target = f"127.0.0.1:{port}" if method == "CONNECT" else path
            body = b'{"amount": "1000", "state": "PAUSED"}' if method in ("POST", "PUT", "PATCH") else b""
            status, headers, payload = raw_request(port, method, target, body,
                                                   {"Content-Type": "application/json"} if body else None)
            assert status == 405, (method, path, status, payload)
            assert headers["allow"] == "GET" and payload == b"method not allowed\n", (method, headers)
            seen[f"{method} {path}"] = payload + repr(headers).encode()
    # the console's write paths: without a console token (none configured here) every POST is refused (403),
    # whatever it carries; any other method there is 405
    for path in ("/unlock", "/drafts/approve", "/drafts/reject"):
        form = b"task=x&csrf=1.a.b&token=guess"
        for ctype in ("application/x-www-form-urlencoded", "application/json"):
            status, headers, payload = raw_request(port, "POST", path, form, {"Content-Type": ctype,
                                                                              "Origin": f"http://127.0.0.1:{port}"})
            assert status == (403 if ctype.endswith("urlencoded") else 415), (path, ctype, status, payload)
            seen[f"POST {path} {ctype}"] = payload + repr(headers).encode()
        for method in ("GET", "PUT", "DELETE"):
            status, headers, _ = raw_request(port, method, path)
            assert (status, headers.get("allow")) == ((404, None) if method == "GET" else (405, "GET, POST")), path
    # unknown paths: 404, and never a file from the state dir
    for path in UNKNOWN:
        status, headers, payload = raw_request(port, "GET", path)
        assert status == 404 and payload == b"not found\n", (path, status, payload[:200])
        seen[f"GET {path}"] = payload + repr(headers).encode()
    time.sleep(1.0)
    assert state_fingerprint(run.state) == before  # no refused request changed a byte of the state

    # and the pages still say the same thing afterwards (no hidden effect on the service either)
    assert raw_request(port, "GET", "/healthz")[:1] == (200,)
    assert b"selfpub_paused 0.0" in raw_request(port, "GET", "/metrics")[2]
    found = {k: leaks(v, values) for k, v in seen.items()}
    assert {k: v for k, v in found.items() if v} == {}
    # the log of the whole run, for good measure (the secrets test covers it in depth)
    assert not leaks(d.text(), values)
    d.signal(signal.SIGTERM)
    assert d.wait(60) == 0


def test_a_non_loopback_bind_happens_only_when_configured(start_daemon) -> None:
    run = start_daemon(http='bind = "0.0.0.0"', name="wide")
    d, port = run.daemon, run.port
    assert d.wait_log(lambda r: r.get("msg") == "status server listening")["bind"] == "0.0.0.0"
    assert ("0.0.0.0", port) in listening(d.proc.pid)
    status, _, body = raw_request(port, "GET", "/metrics")  # still reachable on loopback, same rules
    assert status == 200 and not leaks(body, run.secrets.values())
    assert raw_request(port, "POST", "/metrics", b"x")[0] == 405
    d.signal(signal.SIGTERM)
    assert d.wait(60) == 0
