"""dispatch: the departments that returned a task (回退), for each department's return rate

Revision ID: 0009
Revises: 0008
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE dispatch.tasks ADD COLUMN returned_by text[] NOT NULL DEFAULT '{}'")


def downgrade() -> None:
    op.execute("ALTER TABLE dispatch.tasks DROP COLUMN returned_by")
