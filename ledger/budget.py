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
upserts.

A hold's life (ledger_reservation.status):

    reserve -> open --+-- release ----------------------------> released   never sent, or refused unbilled
                      +-- TTL passes, never sent --------------> expired    freed
                      +-- mark_sent, before the request leaves
                              |
                              +-- commit(actual) ---------------> committed  usage known: booked exactly
                              +-- pay(amount, key) -------------> committed  paid over x402: booked against
                                                                             the wallet, once per payment key
                              +-- book_worst_case() ------------> presumed   ambiguous: booked at the hold
                              +-- TTL passes (process died) ----> presumed   sent, so spent: never freed
    presumed -- commit(actual) --> committed   a correcting transaction books actual - held
    expired | released -- commit(actual) --> committed   a late answer still books what it cost

So ledger spend >= what the provider served, and == it for every call whose
usage came back. The sent mark is written (its own small transaction, no
budget lock) before the request leaves; a hold already closed refuses it
(HoldClosed), and then nothing is sent.

Holds a crashed process left open expire after `reservation_ttl_seconds`:
every write under the lock (reserve, and evaluate(), which every gate calls)
first reads the earliest open expiry as part of its state and expires what is
due, so a stale hold never keeps the loop paused past its TTL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from kernel.clock import utcnow
from kernel.money import format_credits
from ledger.accounts import PROVIDERS, WALLET, compute_account, prefix, provider_account
from ledger.journal import Entry, Journal, LedgerError, Write
from ledger.accounts import COMMODITY

if TYPE_CHECKING:
    from config.settings import BudgetSettings  # a type only: read-only commands may pass config.snapshot.Frozen
    from sqlalchemy import Engine

LOCK_ROW = "*"  # not a valid persona name
OWED = prefix(PROVIDERS)  # every liabilities:provider:<name>


class HoldClosed(LedgerError):
    """mark_sent() on a hold that is no longer open (it expired or was closed): do not send."""

    def __init__(self, hold_id: int):
        self.hold_id = hold_id
        super().__init__(f"reservation {hold_id} is no longer open: its request must not be sent")


class BudgetExceeded(LedgerError):
    """A spend would pass a limit. `limit` is one of: paused, available, daily_cap, per_cycle_cap."""

    retryable = False  # for the daemon: recorded, the job skipped; the gate decides the next cycle

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
    return "day:" + when.astimezone(timezone.utc).date().isoformat()


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
_HOLD_STATUS = "SELECT status, actual FROM ledger_reservation WHERE id = ?"
_CLOSE_AGAIN = "UPDATE ledger_reservation SET status = ?, actual = ?, closed_at = ? WHERE id = ? AND status = ?"
_MARK_SENT = "UPDATE ledger_reservation SET sent_at = ? WHERE id = ? AND status = 'open'"
_COUNTER_HEAD = "INSERT INTO ledger_spend_counter (key, spent, reserved)"
_COUNTER_TAIL = (
    "ON CONFLICT (key) DO UPDATE SET spent = ledger_spend_counter.spent + excluded.spent, "
    "reserved = ledger_spend_counter.reserved + excluded.reserved"
)
# Two statements, each re-checking status and sent_at row by row (PostgreSQL re-evaluates the WHERE of
# a row a concurrent mark_sent changed): a hold is freed only if it is still unsent when it expires.
_EXPIRE_UNSENT = (
    "UPDATE ledger_reservation SET status = 'expired', closed_at = ? "
    "WHERE status = 'open' AND expires_at < ? AND sent_at IS NULL RETURNING id, amount, cycle_id, created_at"
)
_EXPIRE_SENT = (
    "UPDATE ledger_reservation SET status = 'presumed', actual = amount, closed_at = ? "
    "WHERE status = 'open' AND expires_at < ? AND sent_at IS NOT NULL "
    "RETURNING id, amount, cycle_id, created_at, agent, model, provider, task_id"
)
UNKNOWN_PROVIDER = "unknown"
X402_KIND = "x402"  # a call paid on chain over x402: expenses:compute:<agent> against the wallet
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
                WALLET, len(WALLET) + 1, prefix(WALLET), len(OWED), OWED,
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

    def check(self, amount: int, *, cycle_id: str | None = None, agent: str | None = None) -> None:
        """Raise BudgetExceeded naming the limit when reserving `amount` now would be refused (reads only)."""
        room, limit = self._room(self._read_only(self.clock(), cycle_id), cycle_id)
        if amount > room:
            raise BudgetExceeded(limit, amount, room, agent)

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
                self._expire(_w, cur, now)
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

    def mark_sent(self, hold: Hold) -> None:
        """Record that the hold's request is about to leave: from now on it is spent unless proven otherwise.

        Raises HoldClosed when the hold is no longer open (it expired meanwhile): the request must not go.
        """
        sql = self.sql
        with self.journal.writing() as w:
            w.cursor.execute(sql.q(_MARK_SENT), (sql.ts(self.clock()), hold.id))
            if w.cursor.rowcount != 1:
                raise HoldClosed(hold.id)

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
        when the hold already expired or was released: it was consumed. When
        the hold was booked at its worst case (presumed), a correcting
        transaction books the difference. `usage` is anything with
        `input_tokens` / `output_tokens` (stored on the transaction). A second
        commit of the same hold posts nothing.
        Returns the ledger transaction id (None when nothing was ever posted).
        """
        if type(actual) is not int or actual < 0:
            raise LedgerError(f"actual cost must be a non-negative int of ucr, got {actual!r}")
        sql = self.sql
        now = self.clock()
        key, note = f"compute:{hold.id}", ""
        with self._locked() as (w, cur):
            cur.execute(sql.q(_CLOSE_OPEN), ("committed", actual, sql.ts(now), hold.id))
            held, delta = (hold.amount, actual) if cur.rowcount == 1 else (0, None)
            if delta is None:
                cur.execute(sql.q(_HOLD_STATUS), (hold.id,))
                row = cur.fetchone()
                status, booked = (row[0], int(row[1] or 0)) if row else ("", 0)
                if status in ("expired", "released"):
                    delta = actual  # freed, yet the provider did the work: it is owed
                elif status == "presumed":
                    # Booked at the worst case: a new transaction corrects it to what was reported.
                    delta, key = actual - booked, f"compute:{hold.id}:usage"
                    note = " (usage reported after the worst case was booked)"
                else:
                    # Already committed: a retry after a crash must not post twice.
                    return self._txn_of(cur, f"compute:{hold.id}:usage") or self._txn_of(cur, f"compute:{hold.id}")
                cur.execute(sql.q(_CLOSE_AGAIN), ("committed", actual, sql.ts(now), hold.id, status))
            if delta:
                memo = (memo or f"{hold.agent} {hold.model or ''}".strip()) + note
                txn = self._post(w, hold, delta, key, provider, now, memo=memo, usage=usage)
            else:
                txn = self._txn_of(cur, f"compute:{hold.id}") if note else None
            counts = [(hold.day, delta, -held)]
            if hold.cycle_id is not None:
                counts.append((cycle_key(hold.cycle_id), delta, -held))
            self._count(cur, counts)
        return txn

    def book_worst_case(self, hold: Hold, *, memo: str = "", provider: str | None = None) -> int | None:
        """An ambiguous outcome (sent, no usage back): book the whole hold as spent (status presumed).

        A later commit() with the reported usage corrects it. A hold already
        closed is left as it is. Returns the transaction id (None for a zero hold).
        """
        sql = self.sql
        now = self.clock()
        with self._locked() as (w, cur):
            cur.execute(sql.q(_CLOSE_OPEN), ("presumed", hold.amount, sql.ts(now), hold.id))
            if cur.rowcount != 1:
                return self._txn_of(cur, f"compute:{hold.id}")
            txn = None
            if hold.amount:
                txn = self._post(w, hold, hold.amount, f"compute:{hold.id}", provider, now,
                                 memo=memo or f"{hold.agent} {hold.model or ''}: no usage back, worst case booked")
            counts = [(hold.day, hold.amount, -hold.amount)]
            if hold.cycle_id is not None:
                counts.append((cycle_key(hold.cycle_id), hold.amount, -hold.amount))
            self._count(cur, counts)
        return txn

    def pay(
        self, hold: Hold, amount: int, *, key: str, memo: str = "", tx_hash: str | None = None, usage: Any = None,
    ) -> int:
        """A call paid on chain (x402): expenses:compute:<agent> against assets:wallet, and the hold closed.

        No provider liability: the wallet paid. The payment, not the hold, is the unit booked once:
        `key` names the payment (network, payer, nonce), so a retry that resent the same signed
        payment under a new hold books nothing again. A hold its TTL already presumed spent has that
        worst-case booking reversed. Returns the payment's transaction id.
        """
        if type(amount) is not int or amount < 0:
            raise LedgerError(f"paid amount must be a non-negative int of ucr, got {amount!r}")
        sql = self.sql
        now = self.clock()
        with self._locked() as (w, cur):
            cur.execute(sql.q(_CLOSE_OPEN), ("committed", amount, sql.ts(now), hold.id))
            held, spent = (hold.amount, 0) if cur.rowcount == 1 else (0, 0)
            if not held:
                cur.execute(sql.q(_HOLD_STATUS), (hold.id,))
                row = cur.fetchone()
                presumed = row is not None and row[0] == "presumed" and int(row[1] or 0) > 0
                if presumed and (booked_txn := self._txn_of(cur, f"compute:{hold.id}")) is not None:
                    booked = int(row[1])
                    owed = provider_account(hold.provider or UNKNOWN_PROVIDER)
                    self.journal.post_cursor(
                        w, "reversal", [Entry(compute_account(hold.agent), -booked), Entry(owed, booked)],
                        idempotency_key=f"reverse:compute:{hold.id}", reverses_id=booked_txn, time=now,
                        memo=f"{hold.agent}: paid over x402, the worst case presumed at expiry is reversed",
                        task_id=hold.task_id, model=hold.model,
                    )
                    spent -= booked
                cur.execute(sql.q(_CLOSE_AGAIN), ("committed", amount, sql.ts(now), hold.id, row[0] if row else ""))
            posted = self.journal.post_cursor(
                w, X402_KIND, [Entry(compute_account(hold.agent), amount), Entry(WALLET, -amount)],
                idempotency_key=key, memo=memo or f"{hold.agent} {hold.model or ''} paid over x402".strip(),
                task_id=hold.task_id, model=hold.model, time=now, tx_hash=tx_hash,
                input_tokens=getattr(usage, "input_tokens", None), output_tokens=getattr(usage, "output_tokens", None),
            ) if amount else None
            if posted is not None and posted.created:
                spent += amount
            counts = [(hold.day, spent, -held)]
            if hold.cycle_id is not None:
                counts.append((cycle_key(hold.cycle_id), spent, -held))
            self._count(cur, counts)
        return posted.txn_id if posted is not None else 0

    def _post(
        self, w: Write, hold: Hold, amount: int, key: str, provider: str | None, now: datetime,
        *, memo: str, usage: Any = None,
    ) -> int:
        """One compute transaction: expenses:compute:<agent> against liabilities:provider:<provider>."""
        owed = provider_account(provider or hold.provider or UNKNOWN_PROVIDER)
        return self.journal.post_cursor(
            w, "compute", [Entry(compute_account(hold.agent), amount), Entry(owed, -amount)],
            idempotency_key=key, memo=memo, task_id=hold.task_id, model=hold.model, time=now,
            input_tokens=getattr(usage, "input_tokens", None), output_tokens=getattr(usage, "output_tokens", None),
        ).txn_id

    def _txn_of(self, cur: Any, key: str) -> int | None:
        cur.execute(self.sql.q("SELECT id FROM ledger_txn WHERE idempotency_key = ?"), (key,))
        row = cur.fetchone()
        return int(row[0]) if row else None

    def release(self, hold: Hold) -> None:
        """Give the held amount back without spending (the request never left, or was refused unbilled)."""
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
        """Expire reservations a crashed process left open past their TTL; returns how many.

        Unsent holds are freed; sent ones are booked at their worst case.
        """
        with self._locked() as (w, cur):
            return self._expire(w, cur, self.clock())

    def _expire(self, w: Write, cur: Any, now: datetime) -> int:
        sql = self.sql
        stamp = sql.ts(now)
        cur.execute(sql.q(_EXPIRE_UNSENT), (stamp, stamp))
        freed = cur.fetchall()
        cur.execute(sql.q(_EXPIRE_SENT), (stamp, stamp))
        spent = cur.fetchall()
        counts = []
        for rows, spend in ((freed, False), (spent, True)):
            for rid, amount, cycle_id, created_at, *_ in rows:
                amount = int(amount)
                counts.append((day_key(sql.parse_ts(created_at)), amount if spend else 0, -amount))
                if cycle_id is not None:
                    counts.append((cycle_key(cycle_id), amount if spend else 0, -amount))
        for rid, amount, cycle_id, created_at, agent, model, provider, task_id in spent:
            if int(amount):
                hold = Hold(int(rid), agent, int(amount), model, provider, cycle_id, task_id)
                self._post(w, hold, int(amount), f"compute:{rid}", None, now,
                           memo=f"{agent} {model or ''}: sent, no usage before the hold expired; worst case booked")
        if counts:
            self._count(cur, counts)
        return len(freed) + len(spent)

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
        """Expire stale holds, then pause below min_balance, resume at resume_balance; between them nothing changes.

        `extra_reason` (e.g. stale chain data) forces a pause whatever the
        balance; without it, a forced pause lifts and the balance rules apply.
        """
        now = self.clock()
        b = self.settings
        with self._locked() as (w, cur):
            st = self._read(cur, now, None)
            if st.next_expiry is not None and st.next_expiry < self.sql.ts(now):
                # A hold a killed process left must not keep the loop paused past its TTL.
                self._expire(w, cur, now)
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
