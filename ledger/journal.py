"""The double-entry journal: append-only transactions whose postings sum to zero.

Errors:
    LedgerError
     +-- UnbalancedTransaction   postings do not sum to zero per commodity
     +-- InvalidPosting          float amount, bad account name, too few postings
     +-- BudgetExceeded          (ledger.budget) a limit would be passed; .limit names it
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from config.db import is_postgres, migrate
from ledger.models import COMMODITY, Account, AccountBalance, Posting, Transaction, utcnow

ACCOUNT_KINDS = ("assets", "liabilities", "income", "expenses", "equity")
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_ledger"

WALLET = "assets:wallet"
RECEIVABLE_ENGAGEMENT = "assets:receivable:engagement"
OPENING = "equity:opening"
TIPS = "income:tips"

TXN = Transaction.__table__
POSTING = Posting.__table__
BALANCE = AccountBalance.__table__
ACCOUNT = Account.__table__


class LedgerError(Exception):
    """Base of every ledger error."""


class UnbalancedTransaction(LedgerError):
    """A transaction whose postings do not sum to zero per commodity."""

    def __init__(self, sums: dict[str, int], idempotency_key: str):
        self.sums = sums
        self.idempotency_key = idempotency_key
        super().__init__(f"transaction {idempotency_key!r} does not balance: {sums}")


class InvalidPosting(LedgerError):
    """A posting that is not an integer amount on a well-formed account."""


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


def compute_account(agent: str) -> str:
    """expenses:compute:<agent>."""
    return f"expenses:compute:{agent}"


def provider_account(provider: str) -> str:
    """liabilities:provider:<name>."""
    return f"liabilities:provider:{provider}"


def engagement_account(platform: str) -> str:
    """income:engagement:<platform>."""
    return f"income:engagement:{platform}"


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
        kind, _, rest = e.account.partition(":")
        if kind not in ACCOUNT_KINDS or not rest or any(not part for part in e.account.split(":")):
            raise InvalidPosting(
                f"account {e.account!r} must look like '<{'|'.join(ACCOUNT_KINDS)}>:name[:sub]'"
            )
        sums[e.commodity] += e.amount
    unbalanced = {c: s for c, s in sums.items() if s != 0}
    if unbalanced:
        raise UnbalancedTransaction(unbalanced, idempotency_key)


def upsert_add(conn: Connection, table, key_cols: dict, add_col: str, amount: int, extra: dict | None = None) -> None:  # noqa: ANN001
    """INSERT ... ON CONFLICT DO UPDATE col = col + amount (SQLite and PostgreSQL)."""
    if is_postgres(conn.engine):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    values = {**key_cols, add_col: amount, **(extra or {})}
    stmt = insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key_cols), set_={add_col: getattr(table.c, add_col) + amount}
    )
    conn.execute(stmt)


class Journal:
    """Append-only double-entry journal over one database."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._known_accounts: set[str] = set()

    def migrate(self) -> None:
        """Create or upgrade the ledger tables."""
        migrate(self.engine, MIGRATIONS, VERSION_TABLE)

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
    ) -> Posted:
        """Write one balanced transaction once; the same key again returns the first one."""
        entries = list(entries)
        check_entries(entries, idempotency_key)
        try:
            with self.engine.begin() as conn:
                return self.post_in(
                    conn, kind, entries, idempotency_key=idempotency_key, memo=memo, task_id=task_id,
                    post_id=post_id, tx_hash=tx_hash, reverses_id=reverses_id, time=time,
                )
        except IntegrityError:
            # Another writer committed the same key between our check and insert.
            existing = self.find(idempotency_key)
            if existing is None:
                raise
            return Posted(existing, False)

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
    ) -> Posted:
        """Like post(), inside the caller's database transaction."""
        check_entries(entries, idempotency_key)
        existing = conn.execute(select(TXN.c.id).where(TXN.c.idempotency_key == idempotency_key)).scalar()
        if existing is not None:
            return Posted(existing, False)
        txn_id = conn.execute(
            TXN.insert()
            .values(
                time=time or utcnow(), memo=memo[:500], kind=kind, idempotency_key=idempotency_key,
                task_id=task_id, post_id=post_id, tx_hash=tx_hash, reverses_id=reverses_id,
            )
            .returning(TXN.c.id)
        ).scalar_one()
        conn.execute(
            POSTING.insert(),
            [{"txn_id": txn_id, "account": e.account, "commodity": e.commodity, "amount": e.amount} for e in entries],
        )
        for e in entries:
            self._ensure_account(conn, e.account)
            upsert_add(conn, BALANCE, {"account": e.account, "commodity": e.commodity}, "balance", e.amount)
        return Posted(txn_id, True)

    def _ensure_account(self, conn: Connection, name: str) -> None:
        if name in self._known_accounts:
            return
        if is_postgres(conn.engine):
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        conn.execute(
            insert(ACCOUNT)
            .values(name=name, kind=name.split(":", 1)[0], created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        self._known_accounts.add(name)

    def reverse(self, txn_id: int, *, idempotency_key: str, memo: str, kind: str = "reversal") -> Posted:
        """Append a transaction that undoes `txn_id` (rows are never edited or deleted)."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(POSTING.c.account, POSTING.c.amount, POSTING.c.commodity).where(POSTING.c.txn_id == txn_id)
            ).all()
            if not rows:
                raise LedgerError(f"no transaction {txn_id} to reverse")
            entries = [Entry(r.account, -r.amount, r.commodity) for r in rows]
            return self.post_in(conn, kind, entries, idempotency_key=idempotency_key, memo=memo, reverses_id=txn_id)

    def find(self, idempotency_key: str) -> int | None:
        """The id of the transaction with this key, or None."""
        with self.engine.connect() as conn:
            return conn.execute(select(TXN.c.id).where(TXN.c.idempotency_key == idempotency_key)).scalar()

    def balance(self, account: str, commodity: str = COMMODITY, conn: Connection | None = None) -> int:
        """Balance of one account, or of every account under it ("liabilities:provider")."""
        stmt = select(func.coalesce(func.sum(BALANCE.c.balance), 0)).where(
            BALANCE.c.commodity == commodity,
            (BALANCE.c.account == account) | BALANCE.c.account.startswith(account + ":"),
        )
        if conn is not None:
            return int(conn.execute(stmt).scalar_one())
        with self.engine.connect() as c:
            return int(c.execute(stmt).scalar_one())

    def balances(self, commodity: str = COMMODITY) -> dict[str, int]:
        """Every account's running balance."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(BALANCE.c.account, BALANCE.c.balance).where(BALANCE.c.commodity == commodity)
            ).all()
        return {r.account: int(r.balance) for r in rows}

    def verify(self) -> list[str]:
        """Recompute from postings: every transaction balances and every running balance matches."""
        problems: list[str] = []
        with self.engine.connect() as conn:
            bad = conn.execute(
                select(POSTING.c.txn_id, POSTING.c.commodity, func.sum(POSTING.c.amount))
                .group_by(POSTING.c.txn_id, POSTING.c.commodity)
                .having(func.sum(POSTING.c.amount) != 0)
            ).all()
            problems += [f"transaction {t} sums to {s} {c}" for t, c, s in bad]
            sums = dict(
                conn.execute(
                    select(POSTING.c.account, func.sum(POSTING.c.amount)).group_by(POSTING.c.account)
                ).all()
            )
        for account, bal in self.balances().items():
            if int(sums.get(account, 0)) != bal:
                problems.append(f"running balance of {account} is {bal}, postings say {sums.get(account, 0)}")
        return problems
