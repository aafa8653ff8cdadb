"""daemon job runs

Revision ID: d0001
Revises:
Create Date: 2026-11-21 08:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = 'd0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('daemon_job_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('persona', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('job', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('instance', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_daemon_job_run_persona_job_started', 'daemon_job_run', ['persona', 'job', 'started_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_daemon_job_run_persona_job_started', table_name='daemon_job_run')
    op.drop_table('daemon_job_run')
