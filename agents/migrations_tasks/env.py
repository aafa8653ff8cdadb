"""Alembic environment of the task table (agents room)."""

from agents.tasks import metadata
from kernel.db import run_migrations_env

run_migrations_env(metadata)
