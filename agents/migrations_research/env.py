"""Alembic environment of the research agent's tables."""

from agents.research_store import metadata
from kernel.db import run_migrations_env

run_migrations_env(metadata)
