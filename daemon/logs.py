"""Structured logs to stdout (JSON lines or logfmt) with every secret redacted.

Redaction happens twice: a logging.Filter scrubs the message, its args, extra
fields and the exception text of each record, and the formatter scrubs the
final line again, so nothing that reaches the stream can carry a secret.
Both use the one Redactor of daemon/redact.py (known secret values from the
settings, every URL taken apart, credential patterns), which `config show`,
the job error records and the status page use too.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import datetime, timezone
from typing import IO, Any

from config.settings import Settings
from daemon.redact import MASK, Redactor, secret_values

__all__ = ["MASK", "JsonFormatter", "LogfmtFormatter", "RedactingFilter", "Redactor", "apply_reload", "secret_values",
           "setup_logging"]

# LogRecord attributes that are not `extra` fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


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
