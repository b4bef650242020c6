"""dispatch schema: departments, rules, tasks, durable deadlines, task history, outbox, inbox

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
    CREATE TABLE dispatch.departments (
        code text PRIMARY KEY,
        name text NOT NULL,
        serves text[] NOT NULL,           -- unit codes whose subtrees the department works in
        contact text NOT NULL DEFAULT '',
        active boolean NOT NULL DEFAULT true,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("""
    CREATE TABLE dispatch.rules (
        id bigserial PRIMARY KEY,
        category_prefix text NOT NULL,    -- '' = any category
        grid_code text NOT NULL,          -- '' = anywhere
        department_code text NOT NULL REFERENCES dispatch.departments (code),
        priority integer NOT NULL DEFAULT 0,
        ack_minutes integer NOT NULL,
        resolve_minutes integer NOT NULL,
        working_time boolean NOT NULL DEFAULT false,
        active boolean NOT NULL DEFAULT true,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )""")
    # The database refuses a tie too, should two writers race past the service's check.
    op.execute("CREATE UNIQUE INDEX rules_no_tie ON dispatch.rules (category_prefix, grid_code, priority) "
               "WHERE active")
    op.execute("""
    CREATE TABLE dispatch.tasks (
        id uuid PRIMARY KEY,
        incident_id uuid NOT NULL UNIQUE,   -- one task per incident, whatever the broker redelivers
        status text NOT NULL CHECK (status IN ('queued', 'assigned', 'acknowledged', 'resolved',
                                               'closed', 'rejected', 'merged')),
        department_code text REFERENCES dispatch.departments (code),
        rule_id bigint REFERENCES dispatch.rules (id),
        category text NOT NULL,
        priority smallint NOT NULL,
        grid_code text NOT NULL,
        lineage text[] NOT NULL,
        dispatched_at timestamptz,
        ack_due_at timestamptz,
        acknowledged_at timestamptz,
        resolve_due_at timestamptz,
        resolved_at timestamptz,
        closed_at timestamptz,
        reopened integer NOT NULL DEFAULT 0,
        escalation_level integer NOT NULL DEFAULT 0,
        escalated_to text,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""")
    op.execute("CREATE INDEX tasks_lineage ON dispatch.tasks USING gin (lineage)")
    op.execute("CREATE INDEX tasks_open ON dispatch.tasks (status, department_code) "
               "WHERE status IN ('queued', 'assigned', 'acknowledged')")
    op.execute("CREATE INDEX tasks_dispatched_at ON dispatch.tasks (dispatched_at)")
    op.execute("""
    CREATE TABLE dispatch.deadlines (
        id bigserial PRIMARY KEY,
        task_id uuid NOT NULL REFERENCES dispatch.tasks (id),
        kind text NOT NULL CHECK (kind IN ('assign', 'acknowledge', 'resolve')),
        level integer NOT NULL DEFAULT 0,
        due_at timestamptz NOT NULL,
        fired_at timestamptz,             -- escalated
        cancelled_at timestamptz          -- met in time, or the task moved on
    )""")
    op.execute("CREATE INDEX deadlines_pending ON dispatch.deadlines (due_at) "
               "WHERE fired_at IS NULL AND cancelled_at IS NULL")
    op.execute("""
    CREATE TABLE dispatch.task_history (
        id bigserial PRIMARY KEY,
        task_id uuid NOT NULL REFERENCES dispatch.tasks (id),
        action text NOT NULL,
        from_status text,
        to_status text NOT NULL,
        department_code text,
        actor_id text NOT NULL,
        actor_role text NOT NULL,
        note text,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""")
    op.execute("CREATE INDEX task_history_task ON dispatch.task_history (task_id, id)")
    for ddl in outbox_ddl("dispatch") + inbox_ddl("dispatch"):
        op.execute(ddl)


def downgrade() -> None:
    op.execute("DROP SCHEMA dispatch CASCADE")
