"""dispatch: the side procedures (extension, return; and following incidents' void, park and
supervise): the task's waiting request, the paused deadline clock, parked and voided tasks and
the review timer of a parked case

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_OLD_STATUSES = "'queued', 'assigned', 'acknowledged', 'resolved', 'closed', 'rejected', 'merged'"


def upgrade() -> None:
    op.execute("ALTER TABLE dispatch.tasks DROP CONSTRAINT tasks_status_check")
    op.execute(f"ALTER TABLE dispatch.tasks ADD CONSTRAINT tasks_status_check CHECK (status IN ({_OLD_STATUSES}, "
               "'parked', 'voided'))")
    op.execute("""
    ALTER TABLE dispatch.tasks
        ADD COLUMN pending text,                       -- extension or return, waiting for its decision
        ADD COLUMN pending_by text,
        ADD COLUMN pending_minutes integer,            -- the working minutes an extension asks for
        ADD COLUMN holds text[] NOT NULL DEFAULT '{}', -- why the clock stands still; empty: it runs
        ADD COLUMN paused_at timestamptz,              -- since when (null while it runs)
        ADD COLUMN paused_minutes integer NOT NULL DEFAULT 0,    -- working minutes paused, all told
        ADD COLUMN extended_minutes integer NOT NULL DEFAULT 0,  -- working minutes granted by extensions
        ADD COLUMN returned integer NOT NULL DEFAULT 0,          -- approved returns
        ADD COLUMN supervised boolean NOT NULL DEFAULT false,
        ADD CONSTRAINT tasks_pending_by CHECK ((pending IS NULL) = (pending_by IS NULL)),
        ADD CONSTRAINT tasks_paused CHECK ((paused_at IS NULL) = (cardinality(holds) = 0))""")
    op.execute("ALTER TABLE dispatch.deadlines DROP CONSTRAINT deadlines_kind_check")
    op.execute("ALTER TABLE dispatch.deadlines ADD CONSTRAINT deadlines_kind_check CHECK (kind IN "
               "('assign', 'acknowledge', 'resolve', 'review'))")


def downgrade() -> None:
    op.execute("ALTER TABLE dispatch.deadlines DROP CONSTRAINT deadlines_kind_check")
    op.execute("ALTER TABLE dispatch.deadlines ADD CONSTRAINT deadlines_kind_check CHECK (kind IN "
               "('assign', 'acknowledge', 'resolve'))")
    op.execute("ALTER TABLE dispatch.tasks DROP CONSTRAINT tasks_paused, DROP CONSTRAINT tasks_pending_by, "
               "DROP COLUMN pending, DROP COLUMN pending_by, DROP COLUMN pending_minutes, DROP COLUMN holds, "
               "DROP COLUMN paused_at, DROP COLUMN paused_minutes, DROP COLUMN extended_minutes, "
               "DROP COLUMN returned, DROP COLUMN supervised")
    op.execute("ALTER TABLE dispatch.tasks DROP CONSTRAINT tasks_status_check")
    op.execute(f"ALTER TABLE dispatch.tasks ADD CONSTRAINT tasks_status_check CHECK (status IN ({_OLD_STATUSES}))")
