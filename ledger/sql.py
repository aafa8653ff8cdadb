"""Hand-written SQL for the ledger's hot paths, run on the raw DB-API cursor.

Why not SQLAlchemy Core here: building and compiling Core statements cost
more than the database work itself (a reserve+commit was ~18 compiled
statements, CPU-bound at ~130/s on SQLite). These strings are written once
with `?` placeholders, rewritten to `%s` for psycopg, and executed on the
connection SQLAlchemy already opened, inside the transaction it began, so
sqlite3's statement cache and psycopg's automatic prepared statements reuse
the parsed plans. SQLAlchemy still owns connections, BEGIN and COMMIT, except
for a read-only command on a SQLite file at head: there the engine is a
kernel.dbapi.PlainEngine (the stdlib sqlite3) and these same statements run on it.

No SQL here may contain a literal `%` or `?` other than placeholders.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from kernel.clock import as_utc
from kernel.dbapi import placeholders
from ledger.accounts import EXPENSES, INCOME, dimensioned, sql_under

if TYPE_CHECKING:  # not imported: on a SQLite file at head the read-only commands run without SQLAlchemy
    from sqlalchemy import Connection, Engine

UTC = timezone.utc

# Income and expense postings roll up per model too; the others with model ''.
# Mirrors migration 0002.
_IS_EXPENSE = sql_under(EXPENSES, "p.account")
_IS_INCOME = sql_under(INCOME, "p.account")


def rollup_model(account: str, model: str | None) -> str:
    """The model a posting is summed under in ledger_rollup."""
    return (model or "") if dimensioned(account) else ""


class Dialect:
    """SQL text and value conversions for one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine):
        self.pg = engine.dialect.name == "postgresql"
        self._texts: dict[str, str] = {}
        # Transactions drive the join, so a time range is read through the index
        # on ledger_txn.time. SQLite (no statistics unless ANALYZE is run) would
        # otherwise scan every posting by account; CROSS JOIN fixes its order.
        self.txn_postings = (
            "ledger_txn t JOIN ledger_posting p ON p.txn_id = t.id" if self.pg
            else "ledger_txn t CROSS JOIN ledger_posting p ON p.txn_id = t.id"
        )

    # -- text ------------------------------------------------------------------

    def q(self, sql: str) -> str:
        """The statement in this driver's placeholder style (cached)."""
        text = self._texts.get(sql)
        if text is None:
            text = placeholders(sql, self.pg)
            self._texts[sql] = text
        return text

    def values(self, sql_head: str, row: str, n: int, tail: str = "") -> str:
        """`sql_head VALUES row, row, ... tail` with n rows (cached per n)."""
        key = f"{sql_head}|{row}|{n}|{tail}"
        text = self._texts.get(key)
        if text is None:
            text = self.q(f"{sql_head} VALUES {', '.join([row] * n)} {tail}")
            self._texts[key] = text
        return text

    def day_of(self, col: str) -> str:
        """SQL for the UTC day (YYYY-MM-DD) of a timestamp column."""
        if self.pg:
            return f"to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        return f"substr({col}, 1, 10)"

    def under(self, prefix: str, col: str = "account") -> str:
        """SQL true for `prefix` and its sub-accounts (accounts.sql_under), able to use an index on `col`.

        On SQLite the same condition is wrapped in the range [prefix, prefix + ";") (";" follows ":"),
        which its planner turns into an index search: a year's postings are never scanned to find one
        account tree. PostgreSQL keeps the plain condition: its collation may not order by code point.
        """
        exact = sql_under(prefix, col)
        if self.pg:
            return exact
        return f"({col} >= '{prefix}' AND {col} < '{prefix};' AND {exact})"

    def posting_rows(self, where: str = "") -> str:
        """A subquery with ledger_rollup's columns (day, account, commodity, model, amount), one row per posting."""
        return (
            f"SELECT {self.day_of('t.time')} AS day, p.account AS account, p.commodity AS commodity, "
            f"CASE WHEN {_IS_EXPENSE} OR {_IS_INCOME} THEN COALESCE(t.model, '') ELSE '' END AS model, "
            f"p.amount AS amount FROM {self.txn_postings}"
            + (f" WHERE {where}" if where else "")
        )

    def task_rows(self, where: str = "") -> str:
        """A subquery with ledger_task_rollup's columns, one row per income or expense posting of a task."""
        return (
            f"SELECT {self.day_of('t.time')} AS day, t.task_id AS task_id, COALESCE(t.post_id, '') AS post_id, "
            f"p.commodity AS commodity, CASE WHEN {_IS_EXPENSE} THEN p.amount ELSE 0 END AS cost, "
            f"CASE WHEN {_IS_INCOME} THEN -p.amount ELSE 0 END AS earnings "
            f"FROM {self.txn_postings} "
            f"WHERE t.task_id IS NOT NULL AND t.task_id <> '' AND ({_IS_EXPENSE} OR {_IS_INCOME})"
            + (f" AND {where}" if where else "")
        )

    # -- values ----------------------------------------------------------------

    def window(self, since: datetime | None, until: datetime | None, col: str = "t.time") -> tuple[list[str], list]:
        """The conditions and params of since <= col < until (an open end adds nothing)."""
        cond: list[str] = []
        params: list = []
        if since is not None:
            cond.append(f"{col} >= ?")
            params.append(self.ts(since))
        if until is not None:
            cond.append(f"{col} < ?")
            params.append(self.ts(until))
        return cond, params

    def ts(self, when: datetime) -> Any:
        """A bind value for a timestamp column, stored exactly as SQLAlchemy stores it."""
        when = when.astimezone(UTC)
        if self.pg:
            return when
        # SQLAlchemy's SQLite DATETIME storage format, "YYYY-MM-DD HH:MM:SS.ffffff" (isoformat: C, not strftime)
        return when.replace(tzinfo=None).isoformat(" ", "microseconds")

    def parse_ts(self, value: Any) -> datetime | None:
        """A timestamp column's value as an aware UTC datetime."""
        return as_utc(value)


def cursor(conn: Connection) -> Any:
    """The DB-API cursor of a SQLAlchemy connection, inside its current transaction."""
    return conn.connection.cursor()


def day_str(when: datetime | date) -> str:
    """YYYY-MM-DD of a day or of a moment (taken in UTC)."""
    if isinstance(when, datetime):
        when = when.astimezone(UTC).date()
    return when.isoformat()
