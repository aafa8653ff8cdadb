"""Each room's migration history, and which of them a database is behind, read without SQLAlchemy or Alembic.

    History.of("ledger")        ledger/migrations, version table alembic_version_ledger
    history.heads               its head revision(s), read from versions/*.py as text
    stored(cursor, tables, pg)  version table -> the revisions it holds: one listing, one UNION read
    behind(histories, engine)   the histories whose stored revisions are not their heads

The one version check: kernel.db.Migrations (SQLAlchemy, then Alembic for what is behind)
and daemon/state.py's plain SQLite path (kernel.dbapi, for read-only commands) both call
behind(). A database newer than the code holds a revision that is no head here, so it
is "behind" too: the caller takes SQLAlchemy's path, where Alembic refuses it.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

VERSION_TABLE_PREFIX = "alembic_version_"
_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.M)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")
# The tables a connection sees unqualified: SQLite's, or those of PostgreSQL's current schema
# (the search path's first: what SQLAlchemy's inspector lists and Alembic creates its table in).
_TABLES_SQLITE = "SELECT name FROM sqlite_master WHERE type = 'table'"
_TABLES_PG = "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"


@dataclass(frozen=True)
class History:
    """One room's Alembic history: its script folder and the version table it keeps."""

    script_location: Path
    version_table: str

    @classmethod
    def of(cls, package: str, folder: str = "migrations") -> History:
        """The history in `package`/`folder`, found without importing the package.

        Its version table is alembic_version_<package with _ for .><what follows "migrations">:
        ledger/migrations -> alembic_version_ledger, agents/migrations_tasks -> alembic_version_agents_tasks.
        """
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise LookupError(f"{package} is not an importable package")
        location = Path(next(iter(spec.submodule_search_locations))) / folder
        table = VERSION_TABLE_PREFIX + package.replace(".", "_") + folder.removeprefix("migrations")
        return cls(location, table)

    @cached_property
    def heads(self) -> frozenset[str]:
        """The head revision(s), read from versions/*.py as text: the revisions nothing revises."""
        revisions: set[str] = set()
        revised: set[str] = set()
        for path in sorted((self.script_location / "versions").glob("*.py")):
            source = path.read_text(encoding="utf-8")
            found = _REVISION.search(source)
            if found is None:
                continue
            revisions.add(found.group(1))
            down = _DOWN_REVISION.search(source)
            if down is not None:
                revised.update(_QUOTED.findall(down.group(1)))
        if not revisions:
            raise LookupError(f"no revisions in {self.script_location / 'versions'}")
        return frozenset(revisions - revised)

    def upgrade(self, engine: Any) -> None:  # noqa: ANN401 - a SQLAlchemy Engine
        """Alembic upgrade of this history to head (unconditionally: Migrations decides whether)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(self.script_location))
        cfg.attributes["connection_engine"] = engine
        cfg.attributes["version_table"] = self.version_table
        cfg.attributes["configure_logger"] = False
        command.upgrade(cfg, "head")


def stored(cur: Any, tables: Sequence[str], *, pg: bool) -> dict[str, frozenset[str]]:  # noqa: ANN401 - a DB-API cursor
    """Version table -> the revisions it holds (empty when the table does not exist), on a DB-API cursor."""
    cur.execute(_TABLES_PG if pg else _TABLES_SQLITE)
    present = {name for (name,) in cur.fetchall()} & set(tables)
    found: dict[str, set[str]] = {t: set() for t in tables}
    if present:
        cur.execute(" UNION ALL ".join(f"SELECT '{t}', version_num FROM {t}" for t in sorted(present)))
        for table, version in cur.fetchall():
            found[table].add(version)
    return {t: frozenset(v) for t, v in found.items()}


def stored_in(engine: Any, tables: Sequence[str]) -> dict[str, frozenset[str]]:  # noqa: ANN401
    """stored() on one connection of `engine` (a SQLAlchemy Engine or a kernel.dbapi.PlainEngine)."""
    with engine.connect() as conn:
        return stored(conn.connection.cursor(), tables, pg=engine.dialect.name == "postgresql")


def behind(histories: Iterable[History], engine: Any) -> list[History]:  # noqa: ANN401
    """The histories whose stored revisions are not their heads (missing, older, or newer than this code)."""
    histories = list(histories)
    found = stored_in(engine, [h.version_table for h in histories])
    return [h for h in histories if found[h.version_table] != h.heads]
