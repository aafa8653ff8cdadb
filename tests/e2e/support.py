"""Helpers for the end-to-end bad-input and security tests.

- `run_cli` / `run_cli_many`: the real `.venv/bin/selfpub` as a subprocess (clean environment).
- `snapshot` / `sqlite_counts`: what a command wrote (files + mtimes, rows per table).
- `ForemServer`: the spec-checking fake Dev.to (tests.publishers.forem.FakeForem) on a real 127.0.0.1 socket.
- `fooled_model`: a FakeOpenAI reply that behaves like a model a hostile feed has talked into anything.
- `cycle_config`: a selfpub.toml wiring a whole cycle to local stand-ins, secrets in 0600 files.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import string
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.publishers.forem import BASE as FOREM_BASE
from tests.publishers.forem import FakeForem, ForemSpec

REPO = Path(__file__).resolve().parents[2]
SELFPUB = REPO / ".venv" / "bin" / "selfpub"
FAKE_MODEL = "fake-model"


# -- the CLI as a subprocess ---------------------------------------------------------------


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any SELFPUB_* setting or systemd credentials dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFPUB_") and k != "CREDENTIALS_DIRECTORY"}
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    env.update(extra or {})
    return env


def run_cli(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `selfpub ARGS` in cwd; stdout and stderr captured as text."""
    return subprocess.run(
        [str(SELFPUB), *args], cwd=cwd, env=cli_env(env), capture_output=True, text=True, timeout=timeout, check=False
    )


def run_cli_many(calls: Sequence[tuple[Sequence[str], Path]], workers: int = 2) -> list[subprocess.CompletedProcess]:
    """Several CLI runs, `workers` at a time (each one pays ~2 s of imports), results in order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda c: run_cli(c[0], c[1]), calls))


# -- what was written ------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every file and folder under root: (kind, size, mtime_ns); an absent root is empty."""
    out: dict[str, tuple[str, int, int]] = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        kind = "dir" if path.is_dir() else "file"
        out[str(path.relative_to(root))] = (kind, 0 if kind == "dir" else st.st_size, st.st_mtime_ns)
    return out


def sqlite_counts(db: Path) -> dict[str, int]:
    """Rows per table of a SQLite file ({} when there is no file)."""
    if not db.exists():
        return {}
    # Opening a WAL database creates -wal/-shm files beside it: count on a copy, never touch the state dir.
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / db.name
        for suffix in ("", "-wal"):
            if Path(f"{db}{suffix}").exists():
                shutil.copy2(f"{db}{suffix}", f"{copy}{suffix}")
        conn = sqlite3.connect(copy)
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
        finally:
            conn.close()


# -- secrets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Secrets:
    """Real-looking random credentials, each written to a 0600 file."""

    devto_api_key: str
    bluesky_app_password: str
    keystore_password: str
    llm_api_key: str

    @classmethod
    def random(cls) -> Secrets:
        """Fresh values in the shapes the real services hand out."""
        alnum = string.ascii_letters + string.digits
        lower = string.ascii_lowercase + string.digits
        return cls(
            devto_api_key="".join(secrets.choice(alnum) for _ in range(24)),
            bluesky_app_password="-".join("".join(secrets.choice(lower) for _ in range(4)) for _ in range(4)),
            keystore_password=secrets.token_urlsafe(24),
            llm_api_key="sk-proj-" + secrets.token_urlsafe(36),
        )

    def values(self) -> dict[str, str]:
        """Name -> secret value."""
        return dict(vars(self))

    def write(self, folder: Path) -> dict[str, Path]:
        """Each secret in its own file of mode 0600 (plus a trailing newline, as editors leave)."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, value in self.values().items():
            path = folder / name
            path.write_text(value + "\n")
            path.chmod(0o600)
            paths[name] = path
        return paths


def leaks(text: str | bytes, values: dict[str, str]) -> list[str]:
    """Names of the secrets found in text (also hex- or UTF-16-encoded inside bytes)."""
    found = []
    for name, value in values.items():
        forms = [value.encode(), value.encode().hex().encode(), value.encode("utf-16-le")]
        data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
        if any(f in data for f in forms):
            found.append(name)
    return found


# -- a fake Dev.to on a real socket ----------------------------------------------------------------


class LoopbackHTTP:
    """A ThreadingHTTPServer on 127.0.0.1, served from a daemon thread while inside `running()`."""

    httpd: ThreadingHTTPServer
    url: str

    def _listen(self, httpd: ThreadingHTTPServer) -> None:
        httpd.daemon_threads = True
        self.httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @contextmanager
    def running(self):  # noqa: ANN201 - yields self (the subclass)
        """Serve while inside the block."""
        self._thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()


class ForemServer(LoopbackHTTP):
    """FakeForem answering real HTTP on 127.0.0.1 (every request validated against the Forem spec)."""

    def __init__(self, api_key: str):
        self.fake = FakeForem(ForemSpec(), api_key=api_key)
        self.errors: list[str] = []
        fake, errors = self.fake, self.errors

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                # The spec names https://dev.to as its server: present the request as sent there.
                request = httpx.Request(self.command, FOREM_BASE + self.path, headers=headers, content=body)
                try:
                    resp = fake.handle(request)
                except Exception as exc:  # noqa: BLE001 - a spec violation is a test failure, reported as 400
                    errors.append(f"{self.command} {self.path}: {type(exc).__name__}: {exc}")
                    resp = httpx.Response(400, json={"error": "request does not match the Forem spec", "status": 400})
                payload = resp.read()
                self.send_response(resp.status_code)
                self.send_header("content-type", resp.headers.get("content-type", "application/json"))
                self.send_header("content-length", str(len(payload)))
                for k, v in resp.headers.items():
                    if k.lower() == "retry-after":
                        self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _handle

        self._listen(ThreadingHTTPServer(("127.0.0.1", 0), Handler))

    @property
    def articles(self) -> list[dict]:
        """Articles created so far."""
        return self.fake.articles



# -- a model a hostile feed has fooled ---------------------------------------------------------------


DATA = re.compile(r"<<<DATA (\w+)>>>\n(.*?)\n<<<END DATA \1>>>", re.DOTALL)


def data_sections(body: dict) -> dict[str, str]:
    """The named data sections of a chat request's messages."""
    text = "\n".join(m.get("content") or "" for m in body.get("messages", []))
    return {m.group(1): m.group(2) for m in DATA.finditer(text)}


def schema_name(body: dict) -> str:
    """Which answer the agent asked for (ResearchAnswer, WriterOutput, CriticOutput)."""
    fmt = body.get("response_format") or {}
    return (fmt.get("json_schema") or {}).get("name", "")


LINKISH = re.compile(r"(?:https?|javascript|data|file):[^\s\"'<>)]+")


BRIEF_POINT = re.compile(r"^- (?P<claim>.+?)(?: \(source: (?P<url>\S+)\))?$")  # the writer's brief has no URLs
CONTEXT = ("The maintainers describe the change in their release notes, with steps for existing users. Teams that "
           "depend on the project should read those notes before they upgrade. Most projects can adopt the new "
           "version in a normal release cycle, and the old behaviour stays available for now. Testing the upgrade "
           "in a staging environment first remains the safest path for production systems. Questions and bug "
           "reports go to the public issue tracker, where the maintainers answer them every week. Upgrade guides "
           "for the most common setups are promised for the next point release, along with a list of known issues.")


def brief_as_prose(brief: str) -> str:
    """The brief's text repeated verbatim as an article: every claim a sentence citing its source, then context."""
    lines = []
    for line in brief.splitlines():
        m = BRIEF_POINT.match(line)
        if m:
            link = f" ([the report]({m['url']}))" if m["url"] else ""
            lines.append(f"{m['claim'].rstrip('.')}{link}.")
        elif line.startswith(("topic: ", "angle: ")):
            lines.append(line.split(": ", 1)[1].rstrip(".") + ".")
        elif line.startswith("source: "):
            lines.append(f"More in [the original post]({line.removeprefix('source: ')}).")
    return "\n\n".join([*lines, CONTEXT])


def fooled_model(payload: str, *, writer_payload: bool) -> object:
    """A FakeOpenAI reply: a model that repeats its data verbatim and does what the data asks.

    The research answer copies each item's title and summary (attacks included) into its claims and
    cites every link it finds in them; the writer copies the brief and, when `writer_payload`, also
    appends `payload` as if it obeyed the feed; the critic approves everything with a 9.
    """

    def reply(body: dict) -> dict:
        kind = schema_name(body)
        sections = data_sections(body)
        if kind == "ResearchAnswer":
            items = json.loads(sections["feed_items"])
            points = [{"claim": f"{it['title']}. {it['summary'][:600]}", "source_url": it["url"]} for it in items]
            links = [u for it in items for u in LINKISH.findall(it["title"] + " " + it["summary"])]
            points += [{"claim": f"Read more at {u}", "source_url": u} for u in links]
            return {"topic": items[0]["title"], "angle": items[0]["summary"][:300],
                    "key_points": points, "sources": [it["url"] for it in items] + links}
        if kind == "WriterOutput":
            brief = sections.get("brief", "")
            body_md = "## What the feed says\n\n" + brief_as_prose(brief) + ("\n\n" + payload if writer_payload else "")
            return {"title": brief.splitlines()[0].removeprefix("topic: ")[:90], "body_markdown": body_md,
                    "tags": ["news", "security"], "description": payload if writer_payload else "News.",
                    "bsky_text": (payload if writer_payload else "News of the day")[:150]}
        if kind == "CriticOutput":
            return {"score": 9, "problems": [], "fixes": [payload] if payload else []}
        return {"answer": payload}

    return reply


# -- a config for a whole cycle ------------------------------------------------------------------------


def cycle_config(
    root: Path,
    *,
    feeds: Sequence[str],
    llm_url: str,
    forem_url: str,
    secret_files: dict[str, Path],
    items_per_cycle: int = 2,
    max_revisions: int = 1,
    research: str = "",
    extra: str = "",
) -> Path:
    """Write root/selfpub.toml: every role on the fake LLM, Dev.to on the fake Forem, local outbox, secrets by file."""
    roles = "".join(
        f'[agents.{role}]\nbase_url = "{llm_url}"\nmodel = "{FAKE_MODEL}"\napi_key_file = "{secret_files["llm_api_key"]}"\n'
        "max_retries = 0\ntimeout_seconds = 20\nmax_calls_per_cycle = 40\ntoken_budget_per_cycle = 1000000\n"
        for role in ("orchestrator", "research", "writer", "critic")
    )
    feed_tables = "".join(f'[[feeds]]\nurl = "{u}"\n' for u in feeds)
    text = f"""state_dir = "{root / 'state'}"

[budget]
min_balance = "0.1"
resume_balance = "0.2"
per_cycle_cap = "5"
daily_cap = "50"

[prices."{FAKE_MODEL}"]
input_per_million = "2"
output_per_million = "6"
provider = "fake"

{roles}
[research]
items_per_cycle = {items_per_cycle}
fetch_timeout_seconds = 20
{research}

[review]
max_revisions = {max_revisions}

[publishers.devto]
enabled = true
base_url = "{forem_url}"
api_key_file = "{secret_files['devto_api_key']}"
publish = true

[publishers.bluesky]
enabled = false
handle = "agent.test"
app_password_file = "{secret_files['bluesky_app_password']}"

[publishers.local]
enabled = true

[wallet]
keystore_password_file = "{secret_files['keystore_password']}"

[http]
port = 0

[logging]
format = "json"
level = "DEBUG"

{feed_tables}
{extra}
"""
    path = root / "selfpub.toml"
    path.write_text(text)
    return path


async def run_one_cycle(config: Path, *, deposit_ucr: int = 10_000_000):  # noqa: ANN201
    """Load the config the way the CLI does, fund the ledger, wire with build_deps and run one cycle.

    Returns (report, settings, deps); the engine is disposed and every client closed afterwards.
    """
    import inspect

    from agents.orchestrator import Orchestrator
    from config import load_settings
    from daemon.state import open_state
    from daemon.wiring_agents import build_deps
    from ledger.funding import deposit

    settings = load_settings(config, cli_env())
    state = open_state(settings)  # as the CLI and the daemon open it
    engine, journal, budget = state.engine, state.journal, state.budget
    if deposit_ucr:
        deposit(journal, deposit_ucr, idempotency_key="e2e-funding")
    closers: list = []
    try:
        deps = build_deps(settings, journal, budget, closers=closers)
        deps.max_attempts = 1
        report = await Orchestrator(deps).run_cycle()
    finally:
        for close in reversed(closers):
            result = close()
            if inspect.isawaitable(result):
                await result
        engine.dispose()
    return report, settings, deps
