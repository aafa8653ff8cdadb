"""append-only triggers, daily rollup, model and usage on transactions, pause cause

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 06:30:00

- ledger_txn gains model, input_tokens, output_tokens (spend by model) and a
  unique index on reverses_id (a transaction is reversed at most once).
- Fewer index pages per write: task_id/post_id/reverses_id indexes cover only
  non-NULL rows, the reservation index only open holds; the unread indexes on
  ledger_txn.kind and ledger_reservation.cycle_id go.
- ledger_rollup: postings summed per UTC day, account, commodity and (on
  income and expense postings) model; ledger_task_rollup: cost and earnings
  per UTC day, task and post. Both backfilled here.
- ledger_budget_state gains cause (balance|forced), so hysteresis never has to
  read the reason text.
- Triggers make UPDATE and DELETE on ledger_txn and ledger_posting fail, on
  SQLite and PostgreSQL (PostgreSQL also refuses TRUNCATE). A correction is a
  new transaction. A later migration that rebuilds either table with
  batch_alter_table (SQLite) must create these triggers again.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

APPEND_ONLY = ("ledger_txn", "ledger_posting")

# The same rules as ledger.sql, spelled out here so this migration never
# changes when the code does.
_EXPENSE = "substr(p.account, 1, 9) = 'expenses:'"
_INCOME = "substr(p.account, 1, 7) = 'income:'"


def _day_expr(dialect: str) -> str:
    if dialect == "postgresql":
        return "to_char(t.time AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return "substr(t.time, 1, 10)"


def _where(condition: str) -> dict:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name

    op.add_column('ledger_txn', sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    op.add_column('ledger_txn', sa.Column('input_tokens', sa.BigInteger(), nullable=True))
    op.add_column('ledger_txn', sa.Column('output_tokens', sa.BigInteger(), nullable=True))
    # Fewer index pages written per transaction: partial indexes of only the
    # rows anyone looks up, and no index nobody reads (kind, reservation cycle).
    op.create_index(
        'ux_ledger_txn_reverses_id', 'ledger_txn', ['reverses_id'], unique=True, **_where("reverses_id IS NOT NULL")
    )
    op.drop_index('ix_ledger_txn_kind', table_name='ledger_txn')
    for column in ("task_id", "post_id"):
        op.drop_index(f'ix_ledger_txn_{column}', table_name='ledger_txn')
        op.create_index(f'ix_ledger_txn_{column}', 'ledger_txn', [column], **_where(f"{column} IS NOT NULL"))
    op.drop_index('ix_ledger_reservation_cycle_id', table_name='ledger_reservation')
    op.drop_index('ix_reservation_status_expires', table_name='ledger_reservation')
    op.create_index('ix_reservation_open_expires', 'ledger_reservation', ['expires_at'], **_where("status = 'open'"))

    op.add_column(
        'ledger_budget_state',
        sa.Column('cause', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default=''),
    )
    op.execute("UPDATE ledger_budget_state SET cause = 'balance' WHERE paused AND reason LIKE 'available %'")
    op.execute("UPDATE ledger_budget_state SET cause = 'forced' WHERE paused AND cause = ''")

    op.create_table('ledger_rollup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('commodity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('postings', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'account', 'commodity', 'model', name='ux_ledger_rollup_key')
    )
    op.create_table('ledger_task_rollup',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('task_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('post_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('commodity', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('cost', sa.BigInteger(), nullable=False),
    sa.Column('earnings', sa.BigInteger(), nullable=False),
    sa.Column('postings', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'task_id', 'post_id', 'commodity', name='ux_ledger_task_rollup_key')
    )
    day = _day_expr(dialect)
    op.execute(
        "INSERT INTO ledger_rollup (day, account, commodity, model, amount, postings) "
        f"SELECT {day}, p.account, p.commodity, "
        f"CASE WHEN {_EXPENSE} OR {_INCOME} THEN COALESCE(t.model, '') ELSE '' END, SUM(p.amount), COUNT(*) "
        "FROM ledger_posting p JOIN ledger_txn t ON t.id = p.txn_id GROUP BY 1, 2, 3, 4"
    )
    op.execute(
        "INSERT INTO ledger_task_rollup (day, task_id, post_id, commodity, cost, earnings, postings) "
        f"SELECT {day}, t.task_id, COALESCE(t.post_id, ''), p.commodity, "
        f"SUM(CASE WHEN {_EXPENSE} THEN p.amount ELSE 0 END), SUM(CASE WHEN {_INCOME} THEN -p.amount ELSE 0 END), "
        "COUNT(*) FROM ledger_posting p JOIN ledger_txn t ON t.id = p.txn_id "
        f"WHERE t.task_id IS NOT NULL AND t.task_id <> '' AND ({_EXPENSE} OR {_INCOME}) GROUP BY 1, 2, 3, 4"
    )

    if dialect == "postgresql":
        op.execute(
            """
            CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'ledger is append-only: % on % refused (post a reversal instead)', TG_OP, TG_TABLE_NAME
                    USING ERRCODE = 'restrict_violation';
            END
            $$
            """
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"
            )
    else:
        for table in APPEND_ONLY:
            for op_name in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger is append-only: {op_name} on {table} refused "
                    "(post a reversal instead)'); END"
                )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION ledger_append_only()")
    else:
        for table in APPEND_ONLY:
            for op_name in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_no_{op_name}")
    op.drop_table('ledger_task_rollup')
    op.drop_table('ledger_rollup')
    op.drop_index('ux_ledger_txn_reverses_id', table_name='ledger_txn')
    op.drop_index('ix_reservation_open_expires', table_name='ledger_reservation')
    op.create_index('ix_reservation_status_expires', 'ledger_reservation', ['status', 'expires_at'])
    op.create_index('ix_ledger_reservation_cycle_id', 'ledger_reservation', ['cycle_id'])
    for column in ("task_id", "post_id"):
        op.drop_index(f'ix_ledger_txn_{column}', table_name='ledger_txn')
        op.create_index(f'ix_ledger_txn_{column}', 'ledger_txn', [column])
    op.create_index('ix_ledger_txn_kind', 'ledger_txn', ['kind'])
    # Plain DROP COLUMN (SQLite >= 3.35): a batch rebuild of ledger_txn would
    # trip the foreign key from ledger_posting.
    op.execute("ALTER TABLE ledger_budget_state DROP COLUMN cause")
    for column in ("output_tokens", "input_tokens", "model"):
        op.execute(f"ALTER TABLE ledger_txn DROP COLUMN {column}")
