"""Daemon tables: one row per job run (cycles, earnings, settlement, ...), kept for the status page.

Own registry and own Alembic history (version table alembic_version_daemon).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, Index
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kernel.clock import utcnow
from kernel.db import migrate as _migrate

daemon_registry = registry()
metadata = daemon_registry.metadata
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_daemon"

# outcome of a job run
OK, SKIPPED, RETRY, FAILED, CRASHED, ABANDONED, RUNNING = "ok", "skipped", "retry", "failed", "crashed", "abandoned", "running"
DEGRADED = "degraded"  # a cycle that ran while a dependency (model, feeds, platforms) failed
INTERRUPTED = "interrupted"  # left "running" by a process that died (SIGKILL, crash); marked at the next start
ERROR_OUTCOMES = (RETRY, FAILED, CRASHED, ABANDONED, DEGRADED, INTERRUPTED)


class DaemonBase(SQLModel, registry=daemon_registry):
    pass


class JobRun(DaemonBase, table=True):
    """One run of a scheduled job by one instance."""

    __tablename__ = "daemon_job_run"
    __table_args__ = (Index("ix_daemon_job_run_persona_job_started", "persona", "job", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    persona: str = Field(max_length=64)
    job: str = Field(max_length=32)  # cycle|earnings|settle|reconcile
    instance: str = Field(max_length=128)  # host:pid
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    outcome: str = Field(default=RUNNING, max_length=16)
    detail: str = Field(default="", max_length=1000)


def migrate(engine: Engine) -> None:
    """Create or upgrade the daemon tables."""
    _migrate(engine, MIGRATIONS, VERSION_TABLE)
