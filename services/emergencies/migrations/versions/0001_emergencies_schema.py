"""emergencies schema: officers' availability and positions (from grid's events), alerts and
who each reached

Revision ID: 0001
Revises:
"""
from alembic import op

from shared.inbox import inbox_ddl
from shared.outbox import outbox_ddl, outbox_notify_ddl, publication_sequence_ddl, traceparent_ddl

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE emergencies.officers (
        member_id text PRIMARY KEY,
        name text NOT NULL DEFAULT '',
        grids text[] NOT NULL DEFAULT '{}',
        lineage text[] NOT NULL DEFAULT '{}',
        version integer NOT NULL DEFAULT 0,   -- grid's member version: an older event never overwrites
        active boolean NOT NULL DEFAULT true,
        on_duty boolean NOT NULL DEFAULT false,
        busy_incident uuid,
        position geography(Point, 4326),
        position_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    # KNN (ORDER BY position <-> point) and radius (ST_DWithin) on the officers' last positions.
    op.execute("CREATE INDEX officers_position ON emergencies.officers USING gist (position)")
    op.execute("CREATE INDEX officers_lineage ON emergencies.officers USING gin (lineage)")
    op.execute("""
    CREATE TABLE emergencies.alerts (
        id uuid PRIMARY KEY,
        incident_id uuid NOT NULL UNIQUE,
        category text NOT NULL,
        title text NOT NULL,
        lineage text[] NOT NULL,
        location geography(Point, 4326) NOT NULL,
        stage text NOT NULL,
        status text NOT NULL DEFAULT 'open',
        deadline timestamptz,
        opened_at timestamptz NOT NULL DEFAULT now(),
        accepted_by text,
        accepted_at timestamptz
    )""")
    op.execute("CREATE INDEX alerts_due ON emergencies.alerts (deadline) WHERE status = 'open'")
    op.execute("""
    CREATE TABLE emergencies.recipients (
        alert_id uuid NOT NULL REFERENCES emergencies.alerts (id),
        member_id text NOT NULL,
        stage text NOT NULL,
        distance_m double precision,
        sent_at timestamptz NOT NULL DEFAULT now(),
        answer text,
        answered_at timestamptz,
        reason text,
        PRIMARY KEY (alert_id, member_id)
    )""")
    for statement in (*outbox_ddl("emergencies"), *publication_sequence_ddl("emergencies"), *traceparent_ddl("emergencies"),
                      *outbox_notify_ddl("emergencies"), *inbox_ddl("emergencies")):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP SCHEMA emergencies CASCADE")
