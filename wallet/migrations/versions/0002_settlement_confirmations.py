"""settlement: block hash, bookings, head at signing and absence looks of a payment (confirmations, reorgs, recovery)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('wallet_payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_gas_wei', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
        batch_op.add_column(sa.Column('block_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True))
        batch_op.add_column(sa.Column('bookings', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('absent_looks', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('absent_head', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('sign_head', sa.BigInteger(), nullable=True))
    # A payment booked before this revision was booked once.
    op.execute("UPDATE wallet_payment SET bookings = 1 WHERE ledger_txn_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('wallet_payment', schema=None) as batch_op:
        batch_op.drop_column('sign_head')
        batch_op.drop_column('absent_head')
        batch_op.drop_column('absent_looks')
        batch_op.drop_column('bookings')
        batch_op.drop_column('block_hash')
        batch_op.drop_column('max_gas_wei')
