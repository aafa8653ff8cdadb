"""reservation sent mark

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 21:40:00

- ledger_reservation gains sent_at: written just before the request a hold
  pays for leaves the process. A hold that expires with sent_at set was
  spent, not freed: it is booked at its held worst case (status 'presumed').
  Without it, the request never left and the hold is freed (status 'expired').
- Holds already expired or open keep sent_at NULL: before this revision no
  mark was written, so nothing can be said about them.

ledger_reservation is not one of the append-only tables (its status moves
open -> committed | released | expired | presumed), so a plain ADD COLUMN
is enough; no trigger is touched.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('ledger_reservation', sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35), as 0002 does: no batch rebuild.
    op.execute("ALTER TABLE ledger_reservation DROP COLUMN sent_at")
