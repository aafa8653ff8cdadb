"""Alembic environment of the wallet room."""

from kernel.db import run_migrations_env
from wallet.models import metadata

run_migrations_env(metadata)
