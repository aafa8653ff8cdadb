"""Structured logs: JSON lines or logfmt, and no secret from the settings ever reaches the stream."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from config.loader import load_settings
from config.settings import Settings
from daemon.logs import MASK, Redactor, secret_values, setup_logging
from tests.daemon.conftest import REPO

API_KEY = "devto-KEY-3f9a1c77e2b54d"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"


def _settings(fmt: str = "json") -> Settings:
    s = Settings(logging={"format": fmt})
    pubs = s.publishers.model_copy(update={
        "devto": s.publishers.devto.model_copy(update={"api_key_value": SecretStr(API_KEY)}),
        "bluesky": s.publishers.bluesky.model_copy(update={"app_password_value": SecretStr(APP_PASSWORD)}),
    })
    return s.model_copy(update={"publishers": pubs})


@pytest.fixture
def captured():  # noqa: ANN201
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    yield stream
    for h in list(root.handlers):
        if h.get_name() == "selfpub":
            root.removeHandler(h)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_secret_values_found_anywhere_in_the_settings() -> None:
    assert secret_values(_settings()) == {API_KEY, APP_PASSWORD}


@pytest.mark.parametrize("fmt", ["json", "logfmt"])
def test_secrets_never_reach_the_log_stream(captured, fmt) -> None:
    setup_logging(_settings(fmt), stream=captured)
    log = logging.getLogger("selfpub.test")
    log.info("calling dev.to with key %s", API_KEY)
    log.warning("login", extra={"password": APP_PASSWORD, "nested": {"k": [API_KEY]}, "plain": 3})
    try:
        raise RuntimeError(f"401 from dev.to for api-key {API_KEY} and {APP_PASSWORD}")
    except RuntimeError:
        log.exception("publish failed")
    log.info("header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig and sk-live1234567890abcdef")
    out = captured.getvalue()
    assert API_KEY not in out and APP_PASSWORD not in out
    assert "eyJhbGciOiJIUzI1NiJ9" not in out and "sk-live1234567890abcdef" not in out
    assert out.count(MASK) >= 6
    assert "Traceback" in out and "RuntimeError" in out  # the traceback is kept, scrubbed
    lines = out.strip().splitlines()
    assert len(lines) == 4  # one line per record, tracebacks included
    if fmt == "json":
        recs = [json.loads(x) for x in lines]
        assert recs[1]["plain"] == 3 and recs[1]["level"] == "warning" and "exc" in recs[2]
    else:
        assert lines[0].startswith("ts=") and " level=info " in lines[0]


def test_redactor_masks_credential_patterns() -> None:
    r = Redactor()
    text = r.redact('password=hunter22 "api_key": "abc123xyz" postgresql://bob:s3cret@db/x 0x' + "ab" * 32)
    assert "hunter22" not in text and "abc123xyz" not in text and "s3cret" not in text and "ab" * 32 not in text
    assert "postgresql://bob:" in text


def test_a_crashing_daemon_never_prints_its_secret(tmp_path) -> None:
    """A real process with a secret credential file hits a bug quoting the secret: exit 1, secret masked."""
    secret = "tok-" + os.urandom(8).hex()
    cred = tmp_path / "devto.key"
    cred.write_text(secret)
    cred.chmod(0o600)
    state = tmp_path / "state"
    state.mkdir()
    (state / "fake-cycle-bug").write_text(f"api_key={secret} and {secret}")
    config = tmp_path / "selfpub.toml"
    config.write_text(f'state_dir = "{state}"\n[http]\nenabled = false\n'
                      f'[publishers.devto]\nenabled = true\napi_key_file = "{cred}"\n')
    assert load_settings(config, {}).publishers.devto.api_key_value.get_secret_value() == secret
    subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(config), "ledger", "deposit", "5"],
                   cwd=REPO, check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "tests.daemon.run_daemon", "--config", str(config),
                           "--fake-cycle-seconds", "0.1"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1  # a bug: exit non-zero so systemd restarts the service
    assert "Traceback" in proc.stdout and "_FakeBug" in proc.stdout and f"api_key={MASK} and {MASK}" in proc.stdout
    assert secret not in proc.stdout and secret not in proc.stderr
