"""The double-entry journal: append-only transactions whose postings sum to zero.

Account names are `<kind>:<part>[:<part>...]` (ledger.accounts, the chart of
accounts, says which and checks them). Amounts are integers in the
commodity's smallest unit (micro-credits for CR); commodities are 2-16
capitals/digits. The database refuses UPDATE and DELETE on transactions and
postings (migration 0002); a correction is a reversal, a new transaction.

Errors (retryable, read by the daemon's job policy: True = again at the next run, False = permanent,
recorded and skipped, None = the daemon stops and is restarted):
    LedgerError                  None
     +-- UnbalancedTransaction   None: postings do not sum to zero per commodity
     +-- InvalidPosting          None: float/bool amount, bad account or commodity, too few postings
     +-- HoldClosed              None: (ledger.budget) the hold is no longer open; nothing was sent
     +-- BudgetExceeded          False: (ledger.budget) a limit would be passed; .limit names it
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernel.clock import utcnow
from kernel.walsync import wal_writeback
from ledger.accounts import (  # noqa: F401 - names re-exported: `from ledger.journal import WALLET` still works
    OPENING,
    RECEIVABLE_ENGAGEMENT,
    TIPS,
    WALLET,
    account_part,
    check_account,
    compute_account,
    dimensioned,
    engagement_account,
    is_expense,
    provider_account,
)
from ledger.errors import InvalidPosting, LedgerError, UnbalancedTransaction
from ledger.accounts import COMMODITY
from ledger.sql import Dialect, cursor, day_str, rollup_model

if TYPE_CHECKING:  # SQLAlchemy is imported where it is used: a read-only command may run on kernel.dbapi
    from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_ledger"

COMMODITY_RE = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")

# Column widths of ledger_txn; checked here so SQLite refuses what PostgreSQL would.
MAX_KEY, MAX_KIND, MAX_TASK, MAX_POST, MAX_MODEL, MAX_HASH, MAX_MEMO = 200, 32, 64, 200, 200, 80, 500


@dataclass(frozen=True)
class Entry:
    """One posting to write: account, integer micro-credits, commodity."""

    account: str
    amount: int
    commodity: str = COMMODITY


@dataclass(frozen=True)
class Posted:
    """The outcome of a post: the transaction id and whether this call created it."""

    txn_id: int
    created: bool


def check_entries(entries: Sequence[Entry], idempotency_key: str) -> None:
    """Refuse floats, malformed accounts and any transaction that does not sum to zero."""
    if len(entries) < 2:
        raise InvalidPosting(f"transaction {idempotency_key!r} needs at least two postings")
    sums: dict[str, int] = defaultdict(int)
    for e in entries:
        if type(e.amount) is not int:
            raise InvalidPosting(
                f"posting to {e.account} has amount {e.amount!r} ({type(e.amount).__name__}); "
                "amounts are integer micro-credits"
            )
        check_account(e.account)
        if type(e.commodity) is not str or not COMMODITY_RE.match(e.commodity):
            raise InvalidPosting(f"commodity {e.commodity!r} must be 2-16 capital letters or digits, e.g. 'CR'")
        sums[e.commodity] += e.amount
    unbalanced = {c: s for c, s in sums.items() if s != 0}
    if unbalanced:
        raise UnbalancedTransaction(unbalanced, idempotency_key)


def _check_text(what: str, value: str | None, limit: int, *, required: bool = False) -> None:
    if value is None and not required:
        return
    if type(value) is not str or (required and not value) or len(value) > limit:
        kind = "non-empty string" if required else "string"
        raise InvalidPosting(f"{what} must be a {kind} of at most {limit} characters, got {value!r}")


def _check_tokens(what: str, value: int | None) -> None:
    if value is not None and (type(value) is not int or value < 0):
        raise InvalidPosting(f"{what} must be a non-negative int, got {value!r}")


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidPosting(f"transaction time {when!r} has no timezone; use an aware UTC datetime")
    return when


_INSERT_TXN = (
    "INSERT INTO ledger_txn (time, memo, kind, idempotency_key, task_id, post_id, tx_hash, reverses_id, "
    "model, input_tokens, output_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
_FIND = "SELECT id FROM ledger_txn WHERE idempotency_key = ?"
_POSTINGS_HEAD = "INSERT INTO ledger_posting (txn_id, account, commodity, amount)"
_BALANCE_HEAD = "INSERT INTO ledger_balance (account, commodity, balance)"
_BALANCE_TAIL = (
    "ON CONFLICT (account, commodity) DO UPDATE SET balance = ledger_balance.balance + excluded.balance"
)
_ROLLUP_HEAD = "INSERT INTO ledger_rollup (day, account, commodity, model, amount, postings)"
_ROLLUP_TAIL = (
    "ON CONFLICT (day, account, commodity, model) DO UPDATE SET "
    "amount = ledger_rollup.amount + excluded.amount, postings = ledger_rollup.postings + excluded.postings"
)
_TASK_HEAD = "INSERT INTO ledger_task_rollup (day, task_id, post_id, commodity, cost, earnings, postings)"
_TASK_TAIL = (
    "ON CONFLICT (day, task_id, post_id, commodity) DO UPDATE SET "
    "cost = ledger_task_rollup.cost + excluded.cost, earnings = ledger_task_rollup.earnings + excluded.earnings, "
    "postings = ledger_task_rollup.postings + excluded.postings"
)
_ACCOUNT_HEAD = "INSERT INTO ledger_account (name, kind, created_at)"
_ACCOUNT_TAIL = "ON CONFLICT (name) DO NOTHING"
_BALANCE_OF = (
    "SELECT COALESCE(SUM(balance), 0) FROM ledger_balance "
    "WHERE commodity = ? AND (account = ? OR substr(account, 1, ?) = ?)"
)


def _sqlite_path(engine: Any) -> Path | None:  # noqa: ANN401 - an Engine or a kernel.dbapi.PlainEngine
    """The file of a SQLite engine, or None (in memory)."""
    database = getattr(engine, "path", None) or getattr(getattr(engine, "url", None), "database", None)
    return Path(database) if database and str(database) != ":memory:" else None


class Write:
    """One write transaction on a raw DB-API connection: its cursor, and what to do once committed."""

    def __init__(self, cursor: Any):
        self.cursor = cursor
        self.after_commit: list[Callable[[], None]] = []


class Journal:
    """Append-only double-entry journal over one database."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.sql = Dialect(engine)
        # For callers that want a SQLAlchemy write transaction: on SQLite it
        # takes the write lock up front (BEGIN IMMEDIATE), as writing() does.
        self.writer: Engine = engine if self.sql.pg else engine.execution_options(sqlite_begin="IMMEDIATE")
        self._known_accounts: set[str] = set()
        self._dbapi_error = engine.dialect.loaded_dbapi.Error
        # The WAL is written back beside the writer, so a checkpoint in a commit need not wait for it.
        path = None if self.sql.pg else _sqlite_path(engine)
        self._writeback = wal_writeback(path) if path is not None else None

    def migrate(self) -> None:
        """Create or upgrade the ledger tables."""
        from kernel.db import migrate

        migrate(self.engine, MIGRATIONS, VERSION_TABLE)

    # -- transactions ------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[Write]:
        """A write transaction on a pooled raw connection; commits when the block ends, rolls back on error.

        SQLite: BEGIN IMMEDIATE, so the write lock is held from the start (a
        deferred reader that later writes fails at once with SQLITE_BUSY
        instead of waiting). Bypasses SQLAlchemy's Connection: its per-
        transaction bookkeeping cost more than the statements on the hot path.
        Driver errors come out as SQLAlchemy's exceptions (IntegrityError, ...).
        """
        fairy = self.engine.raw_connection()
        try:
            dbapi = fairy.dbapi_connection
            try:
                cur = dbapi.cursor()
                if not self.sql.pg:
                    cur.execute("BEGIN IMMEDIATE")
                w = Write(cur)
                yield w
                dbapi.commit()
            except BaseException as exc:
                try:
                    dbapi.rollback()
                except Exception:  # noqa: BLE001 - the connection is broken: drop it, report the first error
                    fairy.invalidate()
                if isinstance(exc, self._dbapi_error):
                    from sqlalchemy.exc import DBAPIError

                    raise DBAPIError.instance(None, None, exc, self._dbapi_error) from exc
                raise
        finally:
            fairy.close()
        if self._writeback is not None:
            self._writeback.wrote()
        for done in w.after_commit:
            done()

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """A raw cursor for reads (each statement sees a consistent snapshot)."""
        fairy = self.engine.raw_connection()
        try:
            yield fairy.dbapi_connection.cursor()
        finally:
            fairy.close()  # the pool rolls back whatever read transaction the driver opened

    # -- writing -----------------------------------------------------------------

    def post(
        self,
        kind: str,
        entries: Iterable[Entry],
        *,
        idempotency_key: str,
        memo: str = "",
        task_id: str | None = None,
        post_id: str | None = None,
        tx_hash: str | None = None,
        reverses_id: int | None = None,
        time: datetime | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> Posted:
        """Write one balanced transaction once; the same key again returns the first one."""
        entries = list(entries)
        with self.writing() as w:
            return self.post_cursor(
                w, kind, entries, idempotency_key=idempotency_key, memo=memo, task_id=task_id,
                post_id=post_id, tx_hash=tx_hash, reverses_id=reverses_id, time=time, model=model,
                input_tokens=input_tokens, output_tokens=output_tokens,
            )

    def post_in(
        self,
        conn: Connection,
        kind: str,
        entries: Sequence[Entry],
        *,
        idempotency_key: str,
        memo: str = "",
        task_id: str | None = None,
        post_id: str | None = None,
        tx_hash: str | None = None,
        reverses_id: int | None = None,
        time: datetime | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> Posted:
        """Like post(), inside the caller's SQLAlchemy transaction."""
        w = Write(cursor(conn))
        try:
            posted = self.post_cursor(
                w, kind, entries, idempotency_key=idempotency_key, memo=memo, task_id=task_id, post_id=post_id,
                tx_hash=tx_hash, reverses_id=reverses_id, time=time, model=model, input_tokens=input_tokens,
                output_tokens=output_tokens,
            )
        except self._dbapi_error as exc:
            # As from writing(): SQLAlchemy's exceptions, so "database is locked" stays a retryable
            # OperationalError for the daemon's error policy instead of an unclassified driver error.
            from sqlalchemy.exc import DBAPIError

            raise DBAPIError.instance(None, None, exc, self._dbapi_error) from exc
        if w.after_commit:
            from sqlalchemy import event

            # Run them only if the caller's transaction commits.
            def committed(_conn: Connection, todo: list = w.after_commit) -> None:
                for done in todo:
                    done()

            event.listen(conn, "commit", committed, once=True)
        return posted

    def post_cursor(
        self,
        w: Write,
        kind: str,
        entries: Sequence[Entry],
        *,
        idempotency_key: str,
        memo: str = "",
        task_id: str | None = None,
        post_id: str | None = None,
        tx_hash: str | None = None,
        reverses_id: int | None = None,
        time: datetime | None = None,
        model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> Posted:
        """Like post(), inside a writing() transaction."""
        check_entries(entries, idempotency_key)
        _check_text("idempotency_key", idempotency_key, MAX_KEY, required=True)
        _check_text("kind", kind, MAX_KIND, required=True)
        _check_text("task_id", task_id, MAX_TASK)
        _check_text("post_id", post_id, MAX_POST)
        _check_text("model", model, MAX_MODEL)
        _check_text("tx_hash", tx_hash, MAX_HASH)
        _check_tokens("input_tokens", input_tokens)
        _check_tokens("output_tokens", output_tokens)
        when = _aware(time) if time is not None else utcnow()
        sql = self.sql
        cur = w.cursor
        cur.execute(
            sql.q(_INSERT_TXN),
            (sql.ts(when), (memo or "")[:MAX_MEMO], kind, idempotency_key, task_id, post_id, tx_hash, reverses_id,
             model, input_tokens, output_tokens),
        )
        row = cur.fetchone()
        if row is None:
            # The key is taken (perhaps by a writer that raced us): that transaction stands.
            cur.execute(sql.q(_FIND), (idempotency_key,))
            return Posted(int(cur.fetchone()[0]), False)
        txn_id = int(row[0])
        params: list[Any] = []
        for e in entries:
            params += (txn_id, e.account, e.commodity, e.amount)
        cur.execute(sql.values(_POSTINGS_HEAD, "(?, ?, ?, ?)", len(entries)), params)
        self._add_totals(w, when, entries, model, task_id, post_id)
        return Posted(txn_id, True)

    def _add_totals(
        self, w: Write, when: datetime, entries: Sequence[Entry],
        model: str | None, task_id: str | None, post_id: str | None,
    ) -> None:
        """Add a transaction to the running balances and the daily rollups (rows sorted: no deadlocks)."""
        sql = self.sql
        cur = w.cursor
        balances: dict[tuple[str, str], int] = defaultdict(int)
        rollup: dict[tuple[str, str, str], list[int]] = {}
        tasks: dict[str, list[int]] = {}  # commodity -> [cost, earnings, postings]
        for e in entries:
            balances[(e.account, e.commodity)] += e.amount
            slot = rollup.setdefault((e.account, e.commodity, rollup_model(e.account, model)), [0, 0])
            slot[0] += e.amount
            slot[1] += 1
            if task_id and dimensioned(e.account):
                t = tasks.setdefault(e.commodity, [0, 0, 0])
                if is_expense(e.account):
                    t[0] += e.amount
                else:
                    t[1] -= e.amount
                t[2] += 1
        new = {account for account, _ in balances} - self._known_accounts
        if new:
            self._add_accounts(w, sorted(new))
        params: list[Any] = []
        for (account, commodity), amount in sorted(balances.items()):
            params += (account, commodity, amount)
        cur.execute(sql.values(_BALANCE_HEAD, "(?, ?, ?)", len(balances), _BALANCE_TAIL), params)
        day = day_str(when)
        params = []
        for key, (amount, n) in sorted(rollup.items()):
            params += (day, *key, amount, n)
        cur.execute(sql.values(_ROLLUP_HEAD, "(?, ?, ?, ?, ?, ?)", len(rollup), _ROLLUP_TAIL), params)
        if tasks:
            params = []
            for commodity, (cost, earnings, n) in sorted(tasks.items()):
                params += (day, task_id, post_id or "", commodity, cost, earnings, n)
            cur.execute(sql.values(_TASK_HEAD, "(?, ?, ?, ?, ?, ?, ?)", len(tasks), _TASK_TAIL), params)

    def _add_accounts(self, w: Write, names: list[str]) -> None:
        now = self.sql.ts(utcnow())
        params: list[Any] = []
        for name in names:
            params += (name, name.split(":", 1)[0], now)
        w.cursor.execute(self.sql.values(_ACCOUNT_HEAD, "(?, ?, ?)", len(names), _ACCOUNT_TAIL), params)
        # Cache only what a commit made durable: a rolled-back insert must be redone.
        w.after_commit.append(lambda: self._known_accounts.update(names))

    def reverse(
        self, txn_id: int, *, idempotency_key: str, memo: str, kind: str = "reversal", time: datetime | None = None
    ) -> Posted:
        """Append a transaction that undoes `txn_id` (rows are never edited or deleted).

        A transaction is reversed at most once; the same key again returns the reversal.
        """
        with self.writing() as w:
            cur = w.cursor
            q = self.sql.q
            cur.execute(q(_FIND), (idempotency_key,))
            row = cur.fetchone()
            if row is not None:
                return Posted(int(row[0]), False)
            cur.execute(q("SELECT model, task_id, post_id FROM ledger_txn WHERE id = ?"), (txn_id,))
            original = cur.fetchone()
            if original is None:
                raise LedgerError(f"no transaction {txn_id} to reverse")
            cur.execute(q("SELECT id, idempotency_key FROM ledger_txn WHERE reverses_id = ?"), (txn_id,))
            done = cur.fetchone()
            if done is not None:
                raise LedgerError(f"transaction {txn_id} is already reversed by {done[0]} ({done[1]!r})")
            cur.execute(
                q("SELECT account, commodity, amount FROM ledger_posting WHERE txn_id = ? ORDER BY id"), (txn_id,)
            )
            entries = [Entry(account, -int(amount), commodity) for account, commodity, amount in cur.fetchall()]
            model, task_id, post_id = original
            return self.post_cursor(
                w, kind, entries, idempotency_key=idempotency_key, memo=memo, reverses_id=txn_id,
                model=model, task_id=task_id, post_id=post_id, time=time,
            )

    # -- reading -----------------------------------------------------------------

    def find(self, idempotency_key: str) -> int | None:
        """The id of the transaction with this key, or None."""
        with self.reading() as cur:
            cur.execute(self.sql.q(_FIND), (idempotency_key,))
            row = cur.fetchone()
        return int(row[0]) if row else None

    def balance(self, account: str, commodity: str = COMMODITY, conn: Connection | None = None) -> int:
        """Balance of one account, or of every account under it (e.g. accounts.PROVIDERS)."""
        params = (commodity, account, len(account) + 1, account + ":")
        if conn is not None:
            cur = cursor(conn)
            cur.execute(self.sql.q(_BALANCE_OF), params)
            return int(cur.fetchone()[0])
        with self.reading() as cur:
            cur.execute(self.sql.q(_BALANCE_OF), params)
            return int(cur.fetchone()[0])

    def balances(self, commodity: str = COMMODITY) -> dict[str, int]:
        """Every account's running balance."""
        with self.reading() as cur:
            cur.execute(
                self.sql.q("SELECT account, balance FROM ledger_balance WHERE commodity = ? ORDER BY account"),
                (commodity,),
            )
            return {account: int(bal) for account, bal in cur.fetchall()}

    def commodities(self) -> list[str]:
        """Every commodity the ledger has postings in."""
        with self.reading() as cur:
            cur.execute("SELECT DISTINCT commodity FROM ledger_balance ORDER BY commodity")
            return [c for (c,) in cur.fetchall()]

    def verify(self) -> list[str]:
        """Recompute from postings: every transaction balances, every running total matches.

        Returns the problems found (empty when the ledger is sound).
        """
        problems: list[str] = []
        with self.reading() as cur:
            cur.execute(
                "SELECT txn_id, commodity, SUM(amount) FROM ledger_posting "
                "GROUP BY txn_id, commodity HAVING SUM(amount) <> 0 ORDER BY txn_id"
            )
            problems += [f"transaction {t} sums to {int(s)} {c}" for t, c, s in cur.fetchall()]
            cur.execute(
                "SELECT t.id FROM ledger_txn t LEFT JOIN ledger_posting p ON p.txn_id = t.id "
                "GROUP BY t.id HAVING COUNT(p.id) < 2 ORDER BY t.id"
            )
            problems += [f"transaction {t} has fewer than two postings" for (t,) in cur.fetchall()]
            cur.execute("SELECT account, commodity, SUM(amount) FROM ledger_posting GROUP BY account, commodity")
            sums = {(a, c): int(s) for a, c, s in cur.fetchall()}
            cur.execute("SELECT account, commodity, balance FROM ledger_balance")
            running = {(a, c): int(b) for a, c, b in cur.fetchall()}
            for key in sorted(set(sums) | set(running)):
                if sums.get(key, 0) != running.get(key, 0):
                    problems.append(
                        f"running balance of {key[0]} is {running.get(key, 0)} {key[1]}, "
                        f"postings say {sums.get(key, 0)}"
                    )
            for table, cols, sums, stored_cols, rows_sql in (
                ("ledger_rollup", "day, account, commodity, model", "SUM(amount), COUNT(*)", "amount, postings",
                 self.sql.posting_rows()),
                ("ledger_task_rollup", "day, task_id, post_id, commodity", "SUM(cost), SUM(earnings), COUNT(*)",
                 "cost, earnings, postings", self.sql.task_rows()),
            ):
                width = len(cols.split(","))
                zero = (0,) * len(stored_cols.split(","))
                cur.execute(f"SELECT {cols}, {sums} FROM ({rows_sql}) r GROUP BY {cols}")
                expected = {tuple(r[:width]): tuple(int(v) for v in r[width:]) for r in cur.fetchall()}
                cur.execute(f"SELECT {cols}, {stored_cols} FROM {table}")
                stored = {tuple(r[:width]): tuple(int(v) for v in r[width:]) for r in cur.fetchall()}
                for key in sorted(set(expected) | set(stored)):
                    if expected.get(key, zero) != stored.get(key, zero):
                        problems.append(
                            f"{table} {'/'.join(k for k in key if k)} is {stored.get(key, zero)} "
                            f"({stored_cols}), postings say {expected.get(key, zero)}"
                        )
            cur.execute(
                "SELECT DISTINCT p.account FROM ledger_posting p "
                "LEFT JOIN ledger_account a ON a.name = p.account WHERE a.id IS NULL"
            )
            problems += [f"account {a} has postings but no ledger_account row" for (a,) in cur.fetchall()]
        return problems

    def rebuild_totals(self) -> None:
        """Recompute running balances, the rollup and the account list from the postings.

        For repair after verify() finds drift, and for bulk loads that write
        postings directly. Postings and transactions are left untouched.
        """
        sql = self.sql
        with self.writing() as w:
            cur = w.cursor
            cur.execute("DELETE FROM ledger_balance")
            cur.execute(
                "INSERT INTO ledger_balance (account, commodity, balance) "
                "SELECT account, commodity, SUM(amount) FROM ledger_posting GROUP BY account, commodity"
            )
            cur.execute("DELETE FROM ledger_rollup")
            cur.execute(
                "INSERT INTO ledger_rollup (day, account, commodity, model, amount, postings) "
                "SELECT day, account, commodity, model, SUM(amount), COUNT(*) "
                f"FROM ({sql.posting_rows()}) r GROUP BY day, account, commodity, model"
            )
            cur.execute("DELETE FROM ledger_task_rollup")
            cur.execute(
                "INSERT INTO ledger_task_rollup (day, task_id, post_id, commodity, cost, earnings, postings) "
                "SELECT day, task_id, post_id, commodity, SUM(cost), SUM(earnings), COUNT(*) "
                f"FROM ({sql.task_rows()}) r GROUP BY day, task_id, post_id, commodity"
            )
            first_colon = "strpos(p.account, ':')" if sql.pg else "instr(p.account, ':')"
            cur.execute(
                sql.q(
                    f"INSERT INTO ledger_account (name, kind, created_at) "
                    f"SELECT DISTINCT p.account, substr(p.account, 1, {first_colon} - 1), ? FROM ledger_posting p "
                    "WHERE NOT EXISTS (SELECT 1 FROM ledger_account a WHERE a.name = p.account)"
                ),
                (sql.ts(utcnow()),),
            )
        self._known_accounts.clear()
