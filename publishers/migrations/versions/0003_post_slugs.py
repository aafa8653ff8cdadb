"""post slugs: the agent's site URL of each post, stored once

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 06:05:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('publishers_slug',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('slug', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('task_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key'),
    sa.UniqueConstraint('slug')
    )
    with op.batch_alter_table('publishers_slug', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_publishers_slug_task_id'), ['task_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('publishers_slug', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_publishers_slug_task_id'))
    op.drop_table('publishers_slug')
