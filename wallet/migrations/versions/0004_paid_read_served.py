"""paid reads: when the reader was served (a read paid but answered 503 is served once when presented again)

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('wallet_paid_read') as batch:
        batch.add_column(sa.Column('served_at', sa.DateTime(), nullable=True))
    # Every read settled so far was served by the SDK right after its settlement was recorded.
    op.execute("UPDATE wallet_paid_read SET served_at = updated_at WHERE status = 'settled'")


def downgrade() -> None:
    with op.batch_alter_table('wallet_paid_read') as batch:
        batch.drop_column('served_at')
