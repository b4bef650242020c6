"""subscriptions schema: registered subscriptions and the replays asked for

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
    CREATE TABLE subscriptions.subscriptions (
        name text PRIMARY KEY,
        patterns text[] NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("""
    CREATE TABLE subscriptions.replays (
        id bigserial PRIMARY KEY,
        subscription text NOT NULL REFERENCES subscriptions.subscriptions (name) ON DELETE CASCADE,
        source text,
        from_sequence bigint,
        since timestamptz,
        requested_by text NOT NULL,
        requested_at timestamptz NOT NULL DEFAULT now(),
        published integer
    )""")


def downgrade() -> None:
    op.execute("DROP SCHEMA subscriptions CASCADE")
