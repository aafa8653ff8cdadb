"""paid reads: one row per x402 payment for a read (claimed, settled or failed)

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wallet_paid_read',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('payer', sqlmodel.sql.sqltypes.AutoString(length=42), nullable=False),
    sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('slug', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('post_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('task_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('units', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('ucr', sa.BigInteger(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('tx_hash', sqlmodel.sql.sqltypes.AutoString(length=66), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('payment_id'),
    sa.UniqueConstraint('tx_hash'),
    )
    op.create_index('ix_paid_read_payer_status', 'wallet_paid_read', ['chain_id', 'payer', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_paid_read_payer_status', table_name='wallet_paid_read')
    op.drop_table('wallet_paid_read')
