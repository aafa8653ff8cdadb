"""Alembic environment of the ledger room."""

from kernel.db import run_migrations_env
from ledger.models import metadata

run_migrations_env(metadata)
