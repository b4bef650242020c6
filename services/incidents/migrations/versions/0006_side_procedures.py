"""incidents: the side procedures (void, park, supervise): two statuses, the request that waits
for its decision, the park's review date and the supervised mark

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE incidents.incidents DROP CONSTRAINT incidents_status_check")
    op.execute("ALTER TABLE incidents.incidents ADD CONSTRAINT incidents_status_check CHECK (status IN "
               "('reported', 'dispatched', 'in_progress', 'resolved', 'verified', 'closed', 'rejected', "
               "'reopened', 'voided', 'parked'))")
    op.execute("ALTER TABLE incidents.incidents ADD COLUMN pending text, ADD COLUMN pending_by text, "
               "ADD COLUMN review_at timestamptz, ADD COLUMN supervised boolean NOT NULL DEFAULT false, "
               "ADD CONSTRAINT incidents_pending_by CHECK ((pending IS NULL) = (pending_by IS NULL))")
    # The approval queue: the requests waiting for a decision.
    op.execute("CREATE INDEX incidents_pending ON incidents.incidents (pending, seq) WHERE pending IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX incidents.incidents_pending")
    op.execute("ALTER TABLE incidents.incidents DROP CONSTRAINT incidents_pending_by, DROP COLUMN pending, "
               "DROP COLUMN pending_by, DROP COLUMN review_at, DROP COLUMN supervised")
    op.execute("ALTER TABLE incidents.incidents DROP CONSTRAINT incidents_status_check")
    op.execute("ALTER TABLE incidents.incidents ADD CONSTRAINT incidents_status_check CHECK (status IN "
               "('reported', 'dispatched', 'in_progress', 'resolved', 'verified', 'closed', 'rejected', 'reopened'))")
