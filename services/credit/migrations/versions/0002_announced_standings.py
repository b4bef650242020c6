"""credit: the standing last announced per subject, and when it next changes by time alone

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # lists NULL: not yet known (subjects from before this table); the sweep fills it in silently.
    op.execute("""
    CREATE TABLE credit.standings (
        subject_id uuid PRIMARY KEY REFERENCES credit.subjects (id),
        lists text[],
        score integer,
        computed_at timestamptz NOT NULL,
        next_change_at timestamptz
    )""")
    op.execute("CREATE INDEX standings_next_change ON credit.standings (next_change_at) "
               "WHERE next_change_at IS NOT NULL")
    op.execute("INSERT INTO credit.standings (subject_id, computed_at, next_change_at) "
               "SELECT DISTINCT subject_id, now(), now() FROM credit.records")


def downgrade() -> None:
    op.execute("DROP TABLE credit.standings")
