"""Alembic environment of the publishers room."""

from config.db import run_migrations_env
from publishers.models import metadata

run_migrations_env(metadata)
