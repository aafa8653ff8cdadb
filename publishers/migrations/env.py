"""Alembic environment of the publishers room."""

from kernel.db import run_migrations_env
from publishers.models import metadata

run_migrations_env(metadata)
