"""dispatch: the departments that returned a task (回退), for each department's return rate

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE dispatch.tasks ADD COLUMN returned_by text[] NOT NULL DEFAULT '{}'")


def downgrade() -> None:
    op.execute("ALTER TABLE dispatch.tasks DROP COLUMN returned_by")
