"""Budget: reserve the worst case before spending, commit the actual, release the rest.

available = wallet + provider liabilities (negative) - open reservations
spendable = available - budget.reserve, bounded by the daily and per-cycle caps

Every reservation takes the budget lock first (SELECT ... FOR UPDATE on the
persona's budget row in PostgreSQL, BEGIN IMMEDIATE in SQLite), so several
processes on one database never overspend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, func, select, update

from config.db import is_postgres
from config.money import format_credits
from config.settings import BudgetSettings
from ledger.journal import WALLET, Entry, Journal, LedgerError, compute_account, provider_account, upsert_add
from ledger.models import BudgetState, Reservation, SpendCounter, utcnow

RESERVATION = Reservation.__table__
COUNTER = SpendCounter.__table__
STATE = BudgetState.__table__


class BudgetExceeded(LedgerError):
    """A spend would pass a limit. `limit` is one of: paused, available, daily_cap, per_cycle_cap."""

    def __init__(self, limit: str, needed: int, remaining: int, agent: str | None = None):
        self.limit = limit
        self.needed = needed
        self.remaining = remaining
        self.agent = agent
        who = f" for {agent}" if agent else ""
        super().__init__(
            f"budget limit {limit!r} reached{who}: needs {format_credits(needed)} credits, "
            f"{format_credits(max(remaining, 0))} left"
        )


@dataclass(frozen=True)
class Hold:
    """An open reservation: the most a call may cost, held until commit or release."""

    id: int
    agent: str
    amount: int
    model: str | None = None
    provider: str | None = None
    cycle_id: str | None = None
    task_id: str | None = None
    day: str = ""


@dataclass(frozen=True)
class PauseState:
    paused: bool
    reason: str
    changed_at: datetime | None = None


@dataclass(frozen=True)
class Snapshot:
    """The numbers the gate and the reports read, in micro-credits."""

    wallet: int
    liabilities: int  # owed to providers, as a positive number
    reserved: int
    available: int
    spendable: int
    spent_today: int
    pause: PauseState = field(default_factory=lambda: PauseState(False, ""))


def day_key(when: datetime) -> str:
    """The daily-cap counter key of a moment (UTC day)."""
    return f"day:{when:%Y-%m-%d}"


def cycle_key(cycle_id: str) -> str:
    """The per-cycle-cap counter key."""
    return f"cycle:{cycle_id}"


class Budget:
    """Reservations, caps and the pause state of one persona."""

    def __init__(
        self,
        journal: Journal,
        settings: BudgetSettings,
        *,
        persona: str = "default",
        clock: Callable[[], datetime] = utcnow,
    ):
        self.journal = journal
        self.engine: Engine = journal.engine
        self.settings = settings
        self.persona = persona
        self.clock = clock

    # -- the lock ------------------------------------------------------------

    def _locked(self):  # noqa: ANN202
        """A write transaction holding this persona's budget lock."""
        return _BudgetLock(self)

    # -- reading -------------------------------------------------------------

    def _open_reserved(self, conn: Connection) -> int:
        return int(
            conn.execute(
                select(func.coalesce(func.sum(RESERVATION.c.amount), 0)).where(RESERVATION.c.status == "open")
            ).scalar_one()
        )

    def _counter(self, conn: Connection, key: str) -> tuple[int, int]:
        row = conn.execute(select(COUNTER.c.spent, COUNTER.c.reserved).where(COUNTER.c.key == key)).first()
        return (int(row.spent), int(row.reserved)) if row else (0, 0)

    def _available(self, conn: Connection) -> tuple[int, int, int]:
        wallet = self.journal.balance(WALLET, conn=conn)
        liabilities = -self.journal.balance("liabilities:provider", conn=conn)
        reserved = self._open_reserved(conn)
        return wallet, liabilities, reserved

    def snapshot(self) -> Snapshot:
        """Wallet, liabilities, reservations, available and today's spend."""
        with self.engine.connect() as conn:
            wallet, liabilities, reserved = self._available(conn)
            spent, held = self._counter(conn, day_key(self.clock()))
            pause = self._pause(conn)
        available = wallet - liabilities - reserved
        return Snapshot(wallet, liabilities, reserved, available, available - self.settings.reserve, spent + held, pause)

    def available(self) -> int:
        """wallet - provider liabilities - open reservations, in micro-credits."""
        return self.snapshot().available

    def headroom(self, cycle_id: str | None = None) -> int:
        """The largest reservation that would be accepted now (0 when paused)."""
        with self.engine.connect() as conn:
            return max(self._headroom(conn, cycle_id)[0], 0)

    def _headroom(self, conn: Connection, cycle_id: str | None) -> tuple[int, str]:
        if self._pause(conn).paused:
            return 0, "paused"
        wallet, liabilities, reserved = self._available(conn)
        limits = [(wallet - liabilities - reserved - self.settings.reserve, "available")]
        spent, held = self._counter(conn, day_key(self.clock()))
        limits.append((self.settings.daily_cap - spent - held, "daily_cap"))
        if cycle_id is not None:
            spent, held = self._counter(conn, cycle_key(cycle_id))
            limits.append((self.settings.per_cycle_cap - spent - held, "per_cycle_cap"))
        return min(limits)

    # -- reserving -----------------------------------------------------------

    def reserve(
        self,
        agent: str,
        amount: int,
        *,
        model: str | None = None,
        provider: str | None = None,
        cycle_id: str | None = None,
        task_id: str | None = None,
    ) -> Hold:
        """Hold `amount` ucr for one call, or raise BudgetExceeded naming the limit."""
        if type(amount) is not int or amount < 0:
            raise LedgerError(f"reservation amount must be a non-negative int of ucr, got {amount!r}")
        now = self.clock()
        with self._locked() as conn:
            self._expire(conn, now)
            room, limit = self._headroom(conn, cycle_id)
            if amount > room:
                raise BudgetExceeded(limit, amount, room, agent)
            rid = conn.execute(
                RESERVATION.insert()
                .values(
                    agent=agent, model=model, provider=provider, amount=amount, status="open",
                    cycle_id=cycle_id, task_id=task_id, created_at=now,
                    expires_at=now + timedelta(seconds=self.settings.reservation_ttl_seconds),
                )
                .returning(RESERVATION.c.id)
            ).scalar_one()
            day = day_key(now)
            self._count(conn, day, reserved=amount)
            if cycle_id is not None:
                self._count(conn, cycle_key(cycle_id), reserved=amount)
        return Hold(rid, agent, amount, model, provider, cycle_id, task_id, day)

    def commit(self, hold: Hold, actual: int, *, memo: str = "", provider: str | None = None) -> int | None:
        """Post the actual cost (expense against the provider's liability) and close the hold.

        The actual cost is recorded even when it exceeds the hold: it was consumed.
        Returns the ledger transaction id (None when actual is 0).
        """
        if type(actual) is not int or actual < 0:
            raise LedgerError(f"actual cost must be a non-negative int of ucr, got {actual!r}")
        provider = provider or hold.provider or "unknown"
        with self._locked() as conn:
            if not self._close(conn, hold, "committed", actual):
                # Already committed/expired: a retry after a crash must not post twice.
                return self.journal.find(f"compute:{hold.id}") if actual else None
            txn = None
            if actual:
                txn = self.journal.post_in(
                    conn, "compute",
                    [Entry(compute_account(hold.agent), actual), Entry(provider_account(provider), -actual)],
                    idempotency_key=f"compute:{hold.id}", memo=memo or f"{hold.agent} {hold.model or ''}".strip(),
                    task_id=hold.task_id,
                ).txn_id
            self._count(conn, hold.day, spent=actual)
            if hold.cycle_id is not None:
                self._count(conn, cycle_key(hold.cycle_id), spent=actual)
        return txn

    def release(self, hold: Hold) -> None:
        """Give the held amount back without spending (the call never happened)."""
        with self._locked() as conn:
            self._close(conn, hold, "released", None)

    def _close(self, conn: Connection, hold: Hold, status: str, actual: int | None) -> bool:
        done = conn.execute(
            update(RESERVATION)
            .where(RESERVATION.c.id == hold.id, RESERVATION.c.status == "open")
            .values(status=status, actual=actual, closed_at=self.clock())
        ).rowcount
        if not done:
            return False
        self._count(conn, hold.day, reserved=-hold.amount)
        if hold.cycle_id is not None:
            self._count(conn, cycle_key(hold.cycle_id), reserved=-hold.amount)
        return True

    def _count(self, conn: Connection, key: str, *, spent: int = 0, reserved: int = 0) -> None:
        if spent:
            upsert_add(conn, COUNTER, {"key": key}, "spent", spent, {"reserved": 0})
        if reserved:
            upsert_add(conn, COUNTER, {"key": key}, "reserved", reserved, {"spent": 0})

    def expire_stale(self) -> int:
        """Expire reservations a crashed process left open past their TTL; returns how many."""
        with self._locked() as conn:
            return self._expire(conn, self.clock())

    def _expire(self, conn: Connection, now: datetime) -> int:
        rows = conn.execute(
            select(RESERVATION.c.id, RESERVATION.c.amount, RESERVATION.c.cycle_id, RESERVATION.c.created_at).where(
                RESERVATION.c.status == "open", RESERVATION.c.expires_at < now
            )
        ).all()
        for r in rows:
            self._close(conn, Hold(r.id, "", int(r.amount), cycle_id=r.cycle_id, day=day_key(r.created_at)), "expired", None)
        return len(rows)

    def open_reservations(self) -> int:
        """How many reservations are open right now."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(RESERVATION).where(RESERVATION.c.status == "open")).scalar_one()
            )

    def cycle_spent(self, cycle_id: str) -> int:
        """Committed spend of one cycle."""
        with self.engine.connect() as conn:
            return self._counter(conn, cycle_key(cycle_id))[0]

    # -- pause with hysteresis ---------------------------------------------------

    def _pause(self, conn: Connection) -> PauseState:
        row = conn.execute(
            select(STATE.c.paused, STATE.c.reason, STATE.c.changed_at).where(STATE.c.persona == self.persona)
        ).first()
        return PauseState(bool(row.paused), row.reason, row.changed_at) if row else PauseState(False, "")

    def pause_state(self) -> PauseState:
        """Whether the loop is paused and why."""
        with self.engine.connect() as conn:
            return self._pause(conn)

    def evaluate(self, *, extra_reason: str | None = None) -> PauseState:
        """Pause below min_balance, resume at resume_balance; between them nothing changes.

        `extra_reason` (e.g. stale chain data) forces a pause whatever the balance.
        """
        with self._locked() as conn:
            state = self._pause(conn)
            wallet, liabilities, reserved = self._available(conn)
            available = wallet - liabilities - reserved
            b = self.settings
            if extra_reason:
                new = PauseState(True, extra_reason)
            elif available < b.min_balance:
                new = PauseState(
                    True,
                    f"available {format_credits(available)} < min_balance {format_credits(b.min_balance)}; "
                    f"resumes at {format_credits(b.resume_balance)}",
                )
            elif state.paused and available < b.resume_balance and not _forced(state.reason):
                new = state  # hysteresis: stay paused until resume_balance
            else:
                new = PauseState(False, "")
            if (new.paused, new.reason) != (state.paused, state.reason):
                self._write_pause(conn, new)
                new = PauseState(new.paused, new.reason, self.clock())
            else:
                new = state
        return new

    def _write_pause(self, conn: Connection, state: PauseState) -> None:
        conn.execute(
            update(STATE).where(STATE.c.persona == self.persona).values(
                paused=state.paused, reason=state.reason[:500], changed_at=self.clock()
            )
        )


def _forced(reason: str) -> bool:
    """A pause for another cause than the balance (e.g. stale chain) lifts when the cause does."""
    return not reason.startswith("available ")


class _BudgetLock:
    """Context manager: a transaction that holds the persona's budget row lock."""

    def __init__(self, budget: Budget):
        self.budget = budget
        self._ctx = None

    def __enter__(self) -> Connection:
        engine = self.budget.engine
        conn = engine.connect()
        if not is_postgres(engine):
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        self._conn = conn
        self._ctx = conn.begin()
        self._ctx.__enter__()
        persona = self.budget.persona
        if is_postgres(engine):
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        row = conn.execute(select(STATE.c.persona).where(STATE.c.persona == persona).with_for_update()).first()
        if row is None:
            conn.execute(
                insert(STATE).values(persona=persona, paused=False, reason="", changed_at=utcnow())
                .on_conflict_do_nothing(index_elements=["persona"])
            )
            conn.execute(select(STATE.c.persona).where(STATE.c.persona == persona).with_for_update())
        return conn

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        try:
            self._ctx.__exit__(*exc)
        finally:
            self._conn.close()
