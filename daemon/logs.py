"""Structured logs to stdout (JSON lines or logfmt) with every secret redacted.

Redaction happens twice: a logging.Filter scrubs the message, its args, extra
fields and the exception text of each record, and the formatter scrubs the
final line again, so nothing that reaches the stream can carry a secret.
Secret values come from the settings (every SecretStr) plus patterns that
look like credentials (bearer tokens, sk- keys, private keys, password=...).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import IO, Any

from pydantic import BaseModel, SecretStr

from config.settings import Settings

MASK = "[REDACTED]"
# Secrets shorter than this would mask ordinary words; they are still caught by patterns.
MIN_SECRET_LEN = 4

# (pattern, replacement): the replacement keeps the label and masks the value.
SECRET_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{12,}"), rf"\1 {MASK}"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{12,}"), MASK),
    (re.compile(r"\b0x[0-9a-fA-F]{64}\b"), MASK),  # a raw private key
    (re.compile(r"(?i)\b(password|passwd|secret|api[_-]?key|app[_-]?password|private[_-]?key|authorization)"
                r"(\s*[=:]\s*|\"\s*:\s*\")[^\s\"',;&]{3,}"), rf"\1\2{MASK}"),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), rf"\1{MASK}@"),  # user:password@ in URLs
)

# LogRecord attributes that are not `extra` fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def secret_values(settings: BaseModel) -> set[str]:
    """Every SecretStr value anywhere in the settings tree."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            raw = value.get_secret_value()
            if raw and len(raw) >= MIN_SECRET_LEN:
                found.add(raw)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for v in value:
                walk(v)

    walk(settings)
    return found


class Redactor:
    """Replaces known secret values and secret-looking patterns in text."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets: list[str] = []
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Add secret values (longest first, so a secret containing another is masked whole)."""
        merged = set(self.secrets) | {s for s in secrets if s and len(s) >= MIN_SECRET_LEN}
        self.secrets = sorted(merged, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """The text with every secret masked."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern, replacement in SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def redact_value(self, value: Any) -> Any:
        """A redacted copy of a log argument or extra field (strings, containers, objects)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.redact_value(v) for v in value)
        return self.redact(str(value))


class RedactingFilter(logging.Filter):
    """Scrubs message, args, extra fields and exception text of every record."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        r = self.redactor
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = r.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info))
        if record.exc_text:
            record.exc_text = r.redact(record.exc_text)
        record.exc_info = None  # the redacted text replaces the live traceback
        if record.stack_info:
            record.stack_info = r.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, r.redact_value(value))
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, extra fields, exc."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_extras(record))
        exc = record.exc_text or (self.formatException(record.exc_info) if record.exc_info else None)
        if exc:
            doc["exc"] = exc
        return self.redactor.redact(json.dumps(doc, default=str, ensure_ascii=False))


class LogfmtFormatter(logging.Formatter):
    """key=value pairs on one line (logfmt)."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        pairs: list[tuple[str, Any]] = [
            ("ts", datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")),
            ("level", record.levelname.lower()),
            ("logger", record.name),
            ("msg", record.getMessage()),
        ]
        pairs += list(_extras(record).items())
        exc = record.exc_text or (self.formatException(record.exc_info) if record.exc_info else None)
        if exc:
            pairs.append(("exc", exc))
        return self.redactor.redact(" ".join(f"{k}={_logfmt_value(v)}" for k, v in pairs))


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text and not any(c in text for c in ' ="\n\\'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def setup_logging(settings: Settings, stream: IO[str] | None = None) -> Redactor:
    """Route every log record through one redacting handler on stdout; returns the redactor."""
    redactor = Redactor(secret_values(settings))
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.addFilter(RedactingFilter(redactor))
    fmt = JsonFormatter if settings.logging.format == "json" else LogfmtFormatter
    handler.setFormatter(fmt(redactor))
    handler.set_name("selfpub")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "selfpub":
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.logging.level)
    for noisy in ("alembic", "httpx", "httpcore", "urllib3", "selenium"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # "skipped: maximum number of running instances reached" is the coalescing we asked for.
    logging.getLogger("apscheduler").setLevel(max(logging.ERROR, root.level))
    logging.captureWarnings(True)
    return redactor


def apply_reload(settings: Settings, redactor: Redactor) -> None:
    """After a config reload: learn the new secrets and the new level."""
    redactor.update(secret_values(settings))
    logging.getLogger().setLevel(settings.logging.level)
