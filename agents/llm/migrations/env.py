"""Alembic environment of the LLM call log (agents room)."""

from agents.llm.calllog import metadata
from kernel.db import run_migrations_env

run_migrations_env(metadata)
