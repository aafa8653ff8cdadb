"""Alembic environment of the daemon room."""

from kernel.db import run_migrations_env
from daemon.models import metadata

run_migrations_env(metadata)
