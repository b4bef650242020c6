"""incidents: the case's assisting departments (协办) whose tasks are still open

Revision ID: 0008
Revises: 0007
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE incidents.incidents ADD COLUMN assisting text[] NOT NULL DEFAULT '{}'")


def downgrade() -> None:
    op.execute("ALTER TABLE incidents.incidents DROP COLUMN assisting")
