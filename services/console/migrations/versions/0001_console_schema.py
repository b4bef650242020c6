"""console schema: each member's saved work-queue filters

Revision ID: 0001
Revises:
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE console.saved_filters (
        member_id text NOT NULL,
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
        filter jsonb NOT NULL,
        saved_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (member_id, name)
    )""")


def downgrade() -> None:
    op.execute("DROP TABLE console.saved_filters")
