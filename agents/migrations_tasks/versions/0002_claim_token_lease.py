"""claim token and lease on task

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 21:40:00

- task gains claim_token (the fence every write under a claim is conditional
  on) and lease_until (when another worker may take the claim over).
- Claims made before this revision carry no token: they are released here,
  so the next cycle claims those tasks again with a token (their holder was
  the process that is now upgrading).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.execute("UPDATE task SET claimed_by = NULL, claimed_at = NULL WHERE claimed_by IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('claim_token')
