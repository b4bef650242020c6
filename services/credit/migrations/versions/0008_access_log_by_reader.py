"""credit: the access log by reader, for counting a caller's recent failed lookups

Revision ID: 0008
Revises: 0007
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX access_log_reader ON credit.access_log (reader_id, reader_role, at) "
               "WHERE subject_id IS NULL")


def downgrade() -> None:
    op.execute("DROP INDEX credit.access_log_reader")
