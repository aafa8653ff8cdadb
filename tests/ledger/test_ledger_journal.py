"""The journal's invariants, each on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from ledger import (
    OPENING,
    TIPS,
    WALLET,
    Entry,
    InvalidPosting,
    Journal,
    LedgerError,
    UnbalancedTransaction,
    compute_account,
    engagement_account,
    provider_account,
)
from ledger.funding import deposit
from ledger.journal import MIGRATIONS, VERSION_TABLE


def fund(journal: Journal, ucr: int, key: str = "fund") -> int:
    return deposit(journal, ucr, idempotency_key=key).txn_id


def stamp(engine: Engine) -> str:
    """A SQL literal for 2026-02-03 04:05:06 UTC as each database stores it."""
    return "'2026-02-03 04:05:06.000000'" if engine.dialect.name == "sqlite" else "'2026-02-03 04:05:06+00'"


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


# -- every transaction sums to zero per commodity ------------------------------------


def test_balanced_transaction_is_posted_and_balances_move(journal: Journal) -> None:
    posted = journal.post("deposit", [Entry(WALLET, 5_000_000), Entry(OPENING, -5_000_000)], idempotency_key="d1")
    assert posted.created
    assert journal.balance(WALLET) == 5_000_000
    assert journal.balance(OPENING) == -5_000_000
    assert sum(journal.balances().values()) == 0
    assert journal.verify() == []


def test_unbalanced_transaction_is_refused_and_nothing_is_written(journal: Journal) -> None:
    with pytest.raises(UnbalancedTransaction) as err:
        journal.post("deposit", [Entry(WALLET, 5), Entry(OPENING, -4)], idempotency_key="bad")
    assert err.value.sums == {"CR": 1}
    assert count(journal.engine, "ledger_txn") == 0
    assert count(journal.engine, "ledger_posting") == 0


def test_multi_commodity_transaction_must_balance_in_each_commodity(journal: Journal) -> None:
    # A swap: 3 CR out for 2 ETH in, each leg balanced by its own commodity.
    swap = [
        Entry(WALLET, -3, "CR"), Entry("equity:conversion", 3, "CR"),
        Entry("assets:wallet:eth", 2, "ETH"), Entry("equity:conversion", -2, "ETH"),
    ]
    journal.post("swap", swap, idempotency_key="swap")
    assert journal.balance("equity:conversion", "CR") == 3
    assert journal.balance("equity:conversion", "ETH") == -2
    assert journal.commodities() == ["CR", "ETH"]
    # Sums to zero overall (3 - 3 + 2 - 2) but not per commodity: refused.
    lopsided = [Entry(WALLET, 2, "CR"), Entry(OPENING, -3, "CR"), Entry("assets:wallet:eth", 1, "ETH")]
    with pytest.raises(UnbalancedTransaction) as err:
        journal.post("swap", lopsided, idempotency_key="lopsided")
    assert err.value.sums == {"CR": -1, "ETH": 1}
    assert journal.verify() == []


def test_a_transaction_needs_two_postings(journal: Journal) -> None:
    with pytest.raises(InvalidPosting, match="at least two postings"):
        journal.post("deposit", [Entry(WALLET, 0)], idempotency_key="one")


@pytest.mark.parametrize("amount", [1.5, 1.0, Decimal("1"), True, "1", None])
def test_non_integer_amounts_are_refused(journal: Journal, amount: object) -> None:
    with pytest.raises(InvalidPosting, match="integer micro-credits"):
        journal.post("deposit", [Entry(WALLET, amount), Entry(OPENING, -1)], idempotency_key="float")  # type: ignore[arg-type]
    assert count(journal.engine, "ledger_txn") == 0


@pytest.mark.parametrize(
    "account",
    ["wallet", "assets", "assets:", "assets::x", "Assets:wallet", "cash:wallet", "assets:my wallet",
     "assets:wallet;x", "assets:wallet_x", "assets:-x", "assets:" + "x" * 200, ""],
)
def test_malformed_account_names_are_refused(journal: Journal, account: str) -> None:
    with pytest.raises(InvalidPosting, match="must look like"):
        journal.post("deposit", [Entry(account, 1), Entry(OPENING, -1)], idempotency_key="acct")


@pytest.mark.parametrize("commodity", ["cr", "C", "", "CR$", "A" * 17])
def test_malformed_commodities_are_refused(journal: Journal, commodity: str) -> None:
    with pytest.raises(InvalidPosting, match="commodity"):
        journal.post("deposit", [Entry(WALLET, 1, commodity), Entry(OPENING, -1, commodity)], idempotency_key="c")


def test_account_helpers_make_valid_names_from_any_label() -> None:
    assert compute_account("writer") == "expenses:compute:writer"
    assert provider_account("OpenAI API") == "liabilities:provider:openai-api"
    assert engagement_account("dev.to") == "income:engagement:dev-to"
    with pytest.raises(InvalidPosting):
        provider_account("  ")


def test_naive_time_and_oversized_fields_are_refused(journal: Journal) -> None:
    entries = [Entry(WALLET, 1), Entry(OPENING, -1)]
    with pytest.raises(InvalidPosting, match="timezone"):
        journal.post("deposit", entries, idempotency_key="naive", time=datetime(2026, 1, 1))
    with pytest.raises(InvalidPosting, match="task_id"):
        journal.post("deposit", entries, idempotency_key="long", task_id="t" * 65)
    with pytest.raises(InvalidPosting, match="idempotency_key"):
        journal.post("deposit", entries, idempotency_key="")


# -- idempotency ---------------------------------------------------------------------


def test_same_idempotency_key_twice_posts_once(journal: Journal) -> None:
    first = journal.post("tip", [Entry(WALLET, 7), Entry(TIPS, -7)], idempotency_key="tip:0xabc:1")
    again = journal.post("tip", [Entry(WALLET, 7), Entry(TIPS, -7)], idempotency_key="tip:0xabc:1")
    assert first.created and not again.created
    assert again.txn_id == first.txn_id
    assert journal.find("tip:0xabc:1") == first.txn_id
    assert journal.balance(WALLET) == 7
    assert count(journal.engine, "ledger_txn") == 1


def test_racing_writers_with_one_key_post_once(journal: Journal) -> None:
    writers = 8
    barrier = threading.Barrier(writers)
    results: list[object] = []

    def write() -> None:
        barrier.wait()
        try:
            results.append(journal.post("tip", [Entry(WALLET, 5), Entry(TIPS, -5)], idempotency_key="tip:race"))
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            results.append(exc)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(r.created for r in results) == 1  # type: ignore[union-attr]
    assert len({r.txn_id for r in results}) == 1  # type: ignore[union-attr]
    assert journal.balance(WALLET) == 5
    assert count(journal.engine, "ledger_txn") == 1
    assert journal.verify() == []


# -- corrections are new transactions --------------------------------------------------


def test_reversal_is_a_new_transaction_and_the_original_stays(journal: Journal) -> None:
    tip = journal.post(
        "engagement", [Entry("assets:receivable:engagement", 40), Entry(engagement_account("devto"), -40)],
        idempotency_key="eng:1", task_id="task-1", post_id="devto:99",
    ).txn_id
    rev = journal.reverse(tip, idempotency_key="rev:eng:1", memo="double counted")
    assert rev.created and rev.txn_id != tip
    assert journal.balance(engagement_account("devto")) == 0
    assert count(journal.engine, "ledger_txn") == 2
    assert count(journal.engine, "ledger_posting") == 4
    with journal.engine.connect() as conn:
        row = conn.execute(
            text("SELECT kind, reverses_id, task_id, post_id FROM ledger_txn WHERE id = :id"), {"id": rev.txn_id}
        ).one()
    assert tuple(row) == ("reversal", tip, "task-1", "devto:99")
    # The same key returns the reversal; a second, different reversal is refused.
    assert journal.reverse(tip, idempotency_key="rev:eng:1", memo="again") == type(rev)(rev.txn_id, False)
    with pytest.raises(LedgerError, match="already reversed"):
        journal.reverse(tip, idempotency_key="rev:eng:1:b", memo="again")
    with pytest.raises(LedgerError, match="no transaction"):
        journal.reverse(10_000, idempotency_key="rev:none", memo="")
    assert journal.verify() == []


# -- append-only in the database itself ---------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_txn SET memo = 'edited'",
        "DELETE FROM ledger_txn",
        "UPDATE ledger_posting SET amount = amount * 2",
        "DELETE FROM ledger_posting",
    ],
)
def test_ledger_rows_cannot_be_updated_or_deleted(journal: Journal, statement: str) -> None:
    fund(journal, 5)
    with pytest.raises(IntegrityError, match="append-only"):
        with journal.engine.begin() as conn:
            conn.execute(text(statement))
    assert journal.balance(WALLET) == 5
    assert journal.verify() == []


@pytest.mark.postgres
def test_ledger_tables_cannot_be_truncated_on_postgres(pg_url: str) -> None:
    from kernel.db import make_engine

    engine = make_engine(pg_url)
    journal = Journal(engine)
    journal.migrate()
    fund(journal, 5)
    with pytest.raises(IntegrityError, match="append-only"):
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE ledger_posting"))
    engine.dispose()


# -- verify ------------------------------------------------------------------------


def test_verify_finds_drift_in_running_totals_and_rebuild_repairs_it(journal: Journal) -> None:
    fund(journal, 1_000)
    journal.post("compute", [Entry(compute_account("writer"), 30), Entry(provider_account("embedded"), -30)],
                 idempotency_key="c1", model="m1", task_id="t1")
    assert journal.verify() == []
    with journal.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_balance SET balance = balance + 1 WHERE account = 'assets:wallet'"))
        conn.execute(text("UPDATE ledger_rollup SET amount = 0 WHERE account = 'expenses:compute:writer'"))
        conn.execute(text("UPDATE ledger_task_rollup SET cost = 1"))
    problems = journal.verify()
    assert any("running balance of assets:wallet is 1001" in p for p in problems), problems
    assert any("ledger_rollup" in p and "expenses:compute:writer" in p for p in problems), problems
    assert any("ledger_task_rollup" in p and "t1" in p for p in problems), problems
    journal.rebuild_totals()
    assert journal.verify() == []
    assert journal.balance(WALLET) == 1_000


def test_verify_reports_an_unbalanced_transaction_written_behind_the_journals_back(journal: Journal) -> None:
    with journal.engine.begin() as conn:
        conn.execute(text(
            f"INSERT INTO ledger_txn (time, memo, kind, idempotency_key) VALUES ({stamp(journal.engine)}, '', 'x', 'raw')"
        ))
        txn = conn.execute(text("SELECT id FROM ledger_txn WHERE idempotency_key = 'raw'")).scalar_one()
        conn.execute(text(
            "INSERT INTO ledger_posting (txn_id, account, commodity, amount) VALUES (:t, 'assets:wallet', 'CR', 5)"
        ), {"t": txn})
    problems = journal.verify()
    assert f"transaction {txn} sums to 5 CR" in problems
    assert f"transaction {txn} has fewer than two postings" in problems


def test_rollups_split_income_and_expenses_by_model_and_by_task(journal: Journal) -> None:
    when = datetime(2026, 3, 1, 23, 59, 59, tzinfo=timezone.utc)
    journal.post("compute", [Entry(compute_account("writer"), 30), Entry(provider_account("embedded"), -30)],
                 idempotency_key="c1", model="m1", task_id="t1", time=when)
    journal.post("engagement", [Entry("assets:receivable:engagement", 8), Entry(engagement_account("devto"), -8)],
                 idempotency_key="e1", task_id="t1", post_id="devto:7", time=when + timedelta(seconds=1))
    with journal.engine.connect() as conn:
        rollup = conn.execute(text("SELECT day, account, model, amount, postings FROM ledger_rollup ORDER BY account")).all()
        tasks = conn.execute(text(
            "SELECT day, task_id, post_id, cost, earnings, postings FROM ledger_task_rollup ORDER BY day"
        )).all()
    assert [tuple(r) for r in rollup] == [
        ("2026-03-02", "assets:receivable:engagement", "", 8, 1),
        ("2026-03-01", "expenses:compute:writer", "m1", 30, 1),
        ("2026-03-02", "income:engagement:devto", "", -8, 1),
        ("2026-03-01", "liabilities:provider:embedded", "", -30, 1),
    ]
    assert [tuple(r) for r in tasks] == [("2026-03-01", "t1", "", 30, 0, 1), ("2026-03-02", "t1", "devto:7", 0, 8, 1)]
    assert journal.verify() == []


# -- migrations ----------------------------------------------------------------------


def test_migration_0002_backfills_the_rollup_of_a_0001_ledger(engine: Engine) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection_engine"] = engine
    cfg.attributes["version_table"] = VERSION_TABLE
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "0001")
    at = stamp(engine)
    with engine.begin() as conn:
        conn.execute(text(
            f"INSERT INTO ledger_txn (id, time, memo, kind, idempotency_key, task_id) "
            f"VALUES (1, {at}, 'writer m', 'compute', 'compute:1', 'task-9')"
        ))
        conn.execute(text(
            "INSERT INTO ledger_posting (txn_id, account, commodity, amount) VALUES "
            "(1, 'expenses:compute:writer', 'CR', 12), (1, 'liabilities:provider:embedded', 'CR', -12)"
        ))
        conn.execute(text(
            "INSERT INTO ledger_balance (account, commodity, balance) VALUES "
            "('expenses:compute:writer', 'CR', 12), ('liabilities:provider:embedded', 'CR', -12)"
        ))
        conn.execute(text(
            "INSERT INTO ledger_account (name, kind, created_at) VALUES "
            f"('expenses:compute:writer', 'expenses', {at}), ('liabilities:provider:embedded', 'liabilities', {at})"
        ))
    command.upgrade(cfg, "head")
    journal = Journal(engine)
    assert journal.verify() == []
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT day, account, amount FROM ledger_rollup ORDER BY account")).all()
        tasks = conn.execute(text("SELECT day, task_id, cost FROM ledger_task_rollup")).all()
    assert [tuple(r) for r in rows] == [
        ("2026-02-03", "expenses:compute:writer", 12),
        ("2026-02-03", "liabilities:provider:embedded", -12),
    ]
    assert [tuple(r) for r in tasks] == [("2026-02-03", "task-9", 12)]
    command.downgrade(cfg, "0001")
    command.upgrade(cfg, "head")
    assert journal.verify() == []


def test_post_in_joins_the_callers_transaction_and_rolls_back_with_it(journal: Journal) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        with journal.writer.begin() as conn:
            journal.post_in(conn, "tip", [Entry(WALLET, 3), Entry(TIPS, -3)], idempotency_key="in:1")
            raise Abort
    assert journal.find("in:1") is None and journal.balances() == {}
    # The accounts the rolled-back insert named must be written again next time.
    with journal.writer.begin() as conn:
        journal.post_in(conn, "tip", [Entry(WALLET, 3), Entry(TIPS, -3)], idempotency_key="in:2")
    assert journal.balance(WALLET) == 3
    assert journal.verify() == []
