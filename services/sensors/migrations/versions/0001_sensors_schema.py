"""sensors schema: devices, suspected cases, and the outbox

Revision ID: 0001
Revises:
"""
from alembic import op

from shared.outbox import outbox_ddl, outbox_notify_ddl, publication_sequence_ddl, traceparent_ddl

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE sensors.devices (
        id text PRIMARY KEY,
        kind text NOT NULL,
        location geometry(Point, 4326) NOT NULL,
        grid_code text NOT NULL,
        lineage text[] NOT NULL,
        department_code text NOT NULL,
        alarm_map jsonb NOT NULL,
        heartbeat_seconds integer NOT NULL,
        active boolean NOT NULL DEFAULT true,
        registered_by text NOT NULL,
        registered_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz
    )""")
    op.execute("CREATE INDEX devices_lineage ON sensors.devices USING gin (lineage)")
    op.execute("""
    CREATE TABLE sensors.cases (
        id uuid PRIMARY KEY,
        device_id text NOT NULL REFERENCES sensors.devices (id),
        code text NOT NULL,
        category_code text NOT NULL,
        lineage text[] NOT NULL,
        first_at timestamptz NOT NULL,
        last_at timestamptz NOT NULL,
        repeats integer NOT NULL DEFAULT 0,
        last_message text NOT NULL DEFAULT '',
        last_value double precision,
        status text NOT NULL DEFAULT 'pending',
        decided_by text,
        decided_at timestamptz,
        reason text
    )""")
    # One pending case per device and alarm code: a storm collapses into it (ON CONFLICT).
    op.execute("CREATE UNIQUE INDEX cases_one_pending ON sensors.cases (device_id, code) WHERE status = 'pending'")
    op.execute("CREATE INDEX cases_review ON sensors.cases USING gin (lineage) WHERE status = 'pending'")
    op.execute("CREATE INDEX cases_latest ON sensors.cases (device_id, code, first_at DESC)")
    for statement in (*outbox_ddl("sensors"), *publication_sequence_ddl("sensors"), *traceparent_ddl("sensors"),
                      *outbox_notify_ddl("sensors")):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP SCHEMA sensors CASCADE")
