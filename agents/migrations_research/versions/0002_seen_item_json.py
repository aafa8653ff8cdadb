"""seen items keep their FeedItem JSON, so uncovered items form a backlog

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("research_seen_item") as batch:
        batch.add_column(sa.Column("item_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("research_seen_item") as batch:
        batch.drop_column("item_json")
