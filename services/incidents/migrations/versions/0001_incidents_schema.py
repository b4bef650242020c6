"""incidents schema: categories, incidents, history (append-only), outbox, inbox

Revision ID: 0001
Revises:
"""
from alembic import op

from shared.inbox import inbox_ddl
from shared.outbox import outbox_ddl

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE incidents.categories (
        code text PRIMARY KEY,
        name text NOT NULL,
        parent_code text REFERENCES incidents.categories (code),
        priority smallint NOT NULL CHECK (priority BETWEEN 1 AND 4),
        deadline_hours integer NOT NULL CHECK (deadline_hours > 0),
        active boolean NOT NULL DEFAULT true,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("""
    CREATE TABLE incidents.incidents (
        id uuid PRIMARY KEY,
        seq bigserial NOT NULL UNIQUE,
        report_id uuid NOT NULL UNIQUE,
        content_hash text NOT NULL,
        reporter_id text NOT NULL,
        reporter_role text NOT NULL,
        category_code text NOT NULL REFERENCES incidents.categories (code),
        title text NOT NULL,
        description text NOT NULL,
        location geometry(Point, 4326) NOT NULL,
        accuracy_m real NOT NULL,
        occurred_at timestamptz NOT NULL,
        reported_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        grid_code text NOT NULL,
        lineage text[] NOT NULL,
        status text NOT NULL CHECK (status IN ('reported', 'dispatched', 'in_progress', 'resolved',
                                               'verified', 'closed', 'rejected', 'reopened')),
        version integer NOT NULL DEFAULT 1,
        priority smallint NOT NULL,
        department_code text,
        duplicate_of uuid REFERENCES incidents.incidents (id),
        subject_type text CHECK (subject_type IN ('enterprise', 'person')),
        subject_ref text,
        attachments jsonb NOT NULL DEFAULT '[]',
        violation_confirmed boolean,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        CHECK ((subject_type IS NULL) = (subject_ref IS NULL))
    )""")
    op.execute("CREATE INDEX incidents_location ON incidents.incidents USING gist (location)")
    op.execute("CREATE INDEX incidents_lineage ON incidents.incidents USING gin (lineage)")
    op.execute("CREATE INDEX incidents_status_seq ON incidents.incidents (status, seq)")
    op.execute("CREATE INDEX incidents_reported_at ON incidents.incidents (reported_at)")
    op.execute("CREATE INDEX incidents_category ON incidents.incidents (category_code text_pattern_ops)")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    # Duplicate search: open incidents of a category near a point in a time window.
    op.execute("CREATE INDEX incidents_open_dup ON incidents.incidents USING gist (location, reported_at) "
               "WHERE status NOT IN ('closed', 'rejected')")
    op.execute("""
    CREATE TABLE incidents.history (
        id bigserial PRIMARY KEY,
        incident_id uuid NOT NULL REFERENCES incidents.incidents (id),
        version integer NOT NULL,
        action text NOT NULL,
        from_status text,
        to_status text NOT NULL,
        actor_id text NOT NULL,
        actor_role text NOT NULL,
        note text,
        department_code text,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (incident_id, version)
    )""")
    # The audit trail is append-only: the database itself refuses changes.
    op.execute("""
    CREATE FUNCTION incidents.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'incidents.history is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$""")
    op.execute("CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON incidents.history "
               "FOR EACH ROW EXECUTE FUNCTION incidents.refuse_change()")
    op.execute("CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON incidents.history "
               "FOR EACH STATEMENT EXECUTE FUNCTION incidents.refuse_change()")
    for ddl in outbox_ddl("incidents") + inbox_ddl("incidents"):
        op.execute(ddl)


def downgrade() -> None:
    op.execute("DROP SCHEMA incidents CASCADE")
