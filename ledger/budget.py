"""Budget: reserve the worst case before spending, commit the actual, release the rest.

available = wallet - provider liabilities - open reservations
spendable = available - budget.reserve, bounded by the daily and per-cycle caps

Every budget write takes one lock first: SELECT ... FOR UPDATE on the budget
row named "*" in PostgreSQL, BEGIN IMMEDIATE in SQLite. The lock is shared by
every persona on the database because the money is: the wallet, the
liabilities and the cap counters are not per persona. So several processes
on one database never overspend. Reads (snapshot, headroom) take no lock.

Each reserve and commit is a handful of prepared statements (ledger.sql):
reserve = read state, insert the hold, bump the counters; commit = close the
hold, insert the transaction, its postings, the balance, rollup and counter
upserts. Holds a crashed process left open expire after
`reservation_ttl_seconds`: the next write under the lock notices (the
earliest open expiry is part of the state it reads anyway) and expires them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine

from config.money import format_credits
from config.settings import BudgetSettings
from ledger.journal import WALLET, Entry, Journal, LedgerError, Write, compute_account, provider_account
from ledger.models import COMMODITY, utcnow

LOCK_ROW = "*"  # not a valid persona name
PROVIDERS = "liabilities:provider:"


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
    """Whether the loop is paused, why, since when; cause is "balance", "forced" or ""."""

    paused: bool
    reason: str
    changed_at: datetime | None = None
    cause: str = ""


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


@dataclass(frozen=True)
class _State:
    """One read of everything a budget decision needs."""

    pause: PauseState
    wallet: int
    liabilities: int
    reserved: int
    next_expiry: Any  # driver value of the earliest open expires_at, or None
    day_used: int
    cycle_used: int

    @property
    def available(self) -> int:
        return self.wallet - self.liabilities - self.reserved


def day_key(when: datetime) -> str:
    """The daily-cap counter key of a moment (UTC day)."""
    return f"day:{when.astimezone(timezone.utc):%Y-%m-%d}"


def cycle_key(cycle_id: str) -> str:
    """The per-cycle-cap counter key."""
    return f"cycle:{cycle_id}"


_STATE = (
    "SELECT s.paused, s.reason, s.cause, s.changed_at, "
    "(SELECT COALESCE(SUM(balance), 0) FROM ledger_balance "
    f" WHERE commodity = '{COMMODITY}' AND (account = ? OR substr(account, 1, ?) = ?)), "
    f"(SELECT COALESCE(SUM(balance), 0) FROM ledger_balance WHERE commodity = '{COMMODITY}' "
    " AND substr(account, 1, ?) = ?), "
    "(SELECT COALESCE(SUM(amount), 0) FROM ledger_reservation WHERE status = 'open'), "
    "(SELECT MIN(expires_at) FROM ledger_reservation WHERE status = 'open'), "
    "(SELECT spent + reserved FROM ledger_spend_counter WHERE key = ?), "
    "(SELECT spent + reserved FROM ledger_spend_counter WHERE key = ?) "
    "FROM (SELECT 1 AS one) d LEFT JOIN ledger_budget_state s ON s.persona = ?"
)
_LOCK = "SELECT persona FROM ledger_budget_state WHERE persona = ? FOR UPDATE"
_STATE_ROWS = (
    "INSERT INTO ledger_budget_state (persona, paused, reason, cause, changed_at) "
    "VALUES (?, ?, '', '', ?), (?, ?, '', '', ?) ON CONFLICT (persona) DO NOTHING"
)
_INSERT_HOLD = (
    "INSERT INTO ledger_reservation "
    "(agent, model, provider, amount, status, cycle_id, task_id, created_at, expires_at) "
    "VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?) RETURNING id"
)
_CLOSE_OPEN = "UPDATE ledger_reservation SET status = ?, actual = ?, closed_at = ? WHERE id = ? AND status = 'open'"
_CLOSE_LATE = (
    "UPDATE ledger_reservation SET status = 'committed', actual = ?, closed_at = ? "
    "WHERE id = ? AND status IN ('expired', 'released')"
)
_COUNTER_HEAD = "INSERT INTO ledger_spend_counter (key, spent, reserved)"
_COUNTER_TAIL = (
    "ON CONFLICT (key) DO UPDATE SET spent = ledger_spend_counter.spent + excluded.spent, "
    "reserved = ledger_spend_counter.reserved + excluded.reserved"
)
_STALE = "SELECT id, amount, cycle_id, created_at FROM ledger_reservation WHERE status = 'open' AND expires_at < ?"
_EXPIRE = "UPDATE ledger_reservation SET status = 'expired', closed_at = ? WHERE status = 'open' AND expires_at < ?"
_WRITE_PAUSE = "UPDATE ledger_budget_state SET paused = ?, reason = ?, cause = ?, changed_at = ? WHERE persona = ?"


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
        self.sql = journal.sql
        self._rows_ready = False

    # -- the lock ----------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[tuple[Write, Any]]:
        """A write transaction holding the budget lock; yields (the write, its raw cursor)."""
        sql = self.sql
        with self.journal.writing() as w:
            cur = w.cursor
            if not self._rows_ready:
                now = sql.ts(self.clock())
                cur.execute(sql.q(_STATE_ROWS), (LOCK_ROW, False, now, self.persona, False, now))
            if sql.pg:
                cur.execute(sql.q(_LOCK), (LOCK_ROW,))
                cur.fetchall()
            yield w, cur
        self._rows_ready = True

    # -- reading -----------------------------------------------------------------

    def _read(self, cur: Any, now: datetime, cycle_id: str | None) -> _State:
        sql = self.sql
        cur.execute(
            sql.q(_STATE),
            (
                WALLET, len(WALLET) + 1, WALLET + ":", len(PROVIDERS), PROVIDERS,
                day_key(now), cycle_key(cycle_id) if cycle_id is not None else None, self.persona,
            ),
        )
        paused, reason, cause, changed_at, wallet, owed, reserved, next_expiry, day_used, cycle_used = cur.fetchone()
        pause = PauseState(False, "")
        if paused is not None:  # no row yet: never evaluated, not paused
            pause = PauseState(bool(paused), reason or "", sql.parse_ts(changed_at), cause or "")
        return _State(
            pause, int(wallet), -int(owed), int(reserved), next_expiry, int(day_used or 0), int(cycle_used or 0)
        )

    def _read_only(self, now: datetime, cycle_id: str | None = None) -> _State:
        with self.journal.reading() as cur:
            return self._read(cur, now, cycle_id)

    def snapshot(self) -> Snapshot:
        """Wallet, liabilities, reservations, available and today's spend."""
        st = self._read_only(self.clock())
        available = st.available
        return Snapshot(
            st.wallet, st.liabilities, st.reserved, available, available - self.settings.reserve, st.day_used, st.pause
        )

    def available(self) -> int:
        """wallet - provider liabilities - open reservations, in micro-credits."""
        return self._read_only(self.clock()).available

    def headroom(self, cycle_id: str | None = None) -> int:
        """The largest reservation that would be accepted now (0 when paused)."""
        return max(self._room(self._read_only(self.clock(), cycle_id), cycle_id)[0], 0)

    def _room(self, st: _State, cycle_id: str | None) -> tuple[int, str]:
        if st.pause.paused:
            return 0, "paused"
        b = self.settings
        limits = [(st.available - b.reserve, "available"), (b.daily_cap - st.day_used, "daily_cap")]
        if cycle_id is not None:
            limits.append((b.per_cycle_cap - st.cycle_used, "per_cycle_cap"))
        return min(limits)

    # -- reserving ---------------------------------------------------------------

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
        sql = self.sql
        refused: BudgetExceeded | None = None
        with self._locked() as (_w, cur):
            st = self._read(cur, now, cycle_id)
            if st.next_expiry is not None and st.next_expiry < sql.ts(now):
                self._expire(cur, now)
                st = self._read(cur, now, cycle_id)
            room, limit = self._room(st, cycle_id)
            if amount > room:
                # Leave the block normally so expiries made above are kept.
                refused = BudgetExceeded(limit, amount, room, agent)
            else:
                cur.execute(
                    sql.q(_INSERT_HOLD),
                    (agent, model, provider, amount, cycle_id, task_id, sql.ts(now),
                     sql.ts(now + timedelta(seconds=self.settings.reservation_ttl_seconds))),
                )
                rid = int(cur.fetchone()[0])
                day = day_key(now)
                counts = [(day, 0, amount)]
                if cycle_id is not None:
                    counts.append((cycle_key(cycle_id), 0, amount))
                self._count(cur, counts)
        if refused is not None:
            raise refused
        return Hold(rid, agent, amount, model, provider, cycle_id, task_id, day)

    def commit(
        self,
        hold: Hold,
        actual: int,
        usage: Any = None,
        *,
        memo: str = "",
        provider: str | None = None,
    ) -> int | None:
        """Post the actual cost (expense against the provider's liability) and close the hold.

        The actual cost is recorded even when it exceeds the hold, and even
        when the hold already expired or was released: it was consumed.
        `usage` is anything with `input_tokens` / `output_tokens` (stored on the
        transaction). A second commit of the same hold posts nothing.
        Returns the ledger transaction id (None when actual is 0).
        """
        if type(actual) is not int or actual < 0:
            raise LedgerError(f"actual cost must be a non-negative int of ucr, got {actual!r}")
        provider = provider or hold.provider or "unknown"
        key = f"compute:{hold.id}"
        sql = self.sql
        now = self.clock()
        with self._locked() as (w, cur):
            cur.execute(sql.q(_CLOSE_OPEN), ("committed", actual, sql.ts(now), hold.id))
            was_open = cur.rowcount == 1
            if not was_open:
                cur.execute(sql.q(_CLOSE_LATE), (actual, sql.ts(now), hold.id))
                if cur.rowcount != 1:
                    # Already committed: a retry after a crash must not post twice.
                    cur.execute(sql.q("SELECT id FROM ledger_txn WHERE idempotency_key = ?"), (key,))
                    row = cur.fetchone()
                    return int(row[0]) if row else None
            txn = None
            if actual:
                txn = self.journal.post_cursor(
                    w, "compute",
                    [Entry(compute_account(hold.agent), actual), Entry(provider_account(provider), -actual)],
                    idempotency_key=key, memo=memo or f"{hold.agent} {hold.model or ''}".strip(),
                    task_id=hold.task_id, model=hold.model, time=now,
                    input_tokens=getattr(usage, "input_tokens", None),
                    output_tokens=getattr(usage, "output_tokens", None),
                ).txn_id
            held = hold.amount if was_open else 0
            counts = [(hold.day, actual, -held)]
            if hold.cycle_id is not None:
                counts.append((cycle_key(hold.cycle_id), actual, -held))
            self._count(cur, counts)
        return txn

    def release(self, hold: Hold) -> None:
        """Give the held amount back without spending (the call never happened)."""
        sql = self.sql
        with self._locked() as (_w, cur):
            cur.execute(sql.q(_CLOSE_OPEN), ("released", None, sql.ts(self.clock()), hold.id))
            if cur.rowcount == 1:
                counts = [(hold.day, 0, -hold.amount)]
                if hold.cycle_id is not None:
                    counts.append((cycle_key(hold.cycle_id), 0, -hold.amount))
                self._count(cur, counts)

    def _count(self, cur: Any, rows: list[tuple[str, int, int]]) -> None:
        """Add (key, spent, reserved) deltas to the spend counters, in key order."""
        merged: dict[str, list[int]] = {}
        for key, spent, reserved in rows:
            slot = merged.setdefault(key, [0, 0])
            slot[0] += spent
            slot[1] += reserved
        params: list[Any] = []
        for key, (spent, reserved) in sorted(merged.items()):
            params += (key, spent, reserved)
        cur.execute(self.sql.values(_COUNTER_HEAD, "(?, ?, ?)", len(merged), _COUNTER_TAIL), params)

    def expire_stale(self) -> int:
        """Expire reservations a crashed process left open past their TTL; returns how many."""
        with self._locked() as (_w, cur):
            return self._expire(cur, self.clock())

    def _expire(self, cur: Any, now: datetime) -> int:
        sql = self.sql
        stamp = sql.ts(now)
        cur.execute(sql.q(_STALE), (stamp,))
        rows = cur.fetchall()
        if not rows:
            return 0
        cur.execute(sql.q(_EXPIRE), (stamp, stamp))
        counts = []
        for _rid, amount, cycle_id, created_at in rows:
            counts.append((day_key(sql.parse_ts(created_at)), 0, -int(amount)))
            if cycle_id is not None:
                counts.append((cycle_key(cycle_id), 0, -int(amount)))
        self._count(cur, counts)
        return len(rows)

    def open_reservations(self) -> int:
        """How many reservations are open right now."""
        with self.journal.reading() as cur:
            cur.execute("SELECT COUNT(*) FROM ledger_reservation WHERE status = 'open'")
            return int(cur.fetchone()[0])

    def cycle_spent(self, cycle_id: str) -> int:
        """Committed spend of one cycle."""
        with self.journal.reading() as cur:
            cur.execute(self.sql.q("SELECT spent FROM ledger_spend_counter WHERE key = ?"), (cycle_key(cycle_id),))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    # -- pause with hysteresis -----------------------------------------------------

    def pause_state(self) -> PauseState:
        """Whether the loop is paused and why."""
        return self._read_only(self.clock()).pause

    def evaluate(self, *, extra_reason: str | None = None) -> PauseState:
        """Pause below min_balance, resume at resume_balance; between them nothing changes.

        `extra_reason` (e.g. stale chain data) forces a pause whatever the
        balance; without it, a forced pause lifts and the balance rules apply.
        """
        now = self.clock()
        b = self.settings
        with self._locked() as (_w, cur):
            st = self._read(cur, now, None)
            state, available = st.pause, st.available
            if extra_reason:
                new = PauseState(True, extra_reason, cause="forced")
            elif state.paused and state.cause == "balance" and available < b.resume_balance:
                new = state  # hysteresis: stay paused (since then, for the reason given then) until resume_balance
            elif available < b.min_balance:
                new = PauseState(
                    True,
                    f"available {format_credits(available)} < min_balance {format_credits(b.min_balance)}; "
                    f"resumes at {format_credits(b.resume_balance)}",
                    cause="balance",
                )
            else:
                new = PauseState(False, "")
            if (new.paused, new.reason, new.cause) == (state.paused, state.reason, state.cause):
                return state
            cur.execute(
                self.sql.q(_WRITE_PAUSE),
                (new.paused, new.reason[:500], new.cause, self.sql.ts(now), self.persona),
            )
        return PauseState(new.paused, new.reason[:500], now, new.cause)
