"""Alembic environment of the daemon room."""

from config.db import run_migrations_env
from daemon.models import metadata

run_migrations_env(metadata)
