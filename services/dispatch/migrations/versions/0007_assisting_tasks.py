"""dispatch: lead and assisting departments (主办/协办): a case's assisting tasks point at its
lead task; one lead task per incident (the old unique key becomes a partial one)

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_STATUSES = ("'queued', 'assigned', 'acknowledged', 'resolved', 'closed', 'rejected', 'merged', 'parked', "
             "'voided'")


def upgrade() -> None:
    op.execute("ALTER TABLE dispatch.tasks ADD COLUMN lead_task_id uuid REFERENCES dispatch.tasks (id)")
    op.execute("ALTER TABLE dispatch.tasks DROP CONSTRAINT tasks_incident_id_key")
    # One lead task per incident, whatever the broker redelivers; assisting tasks besides it.
    op.execute("CREATE UNIQUE INDEX tasks_one_lead ON dispatch.tasks (incident_id) WHERE lead_task_id IS NULL")
    # One assisting task per department per case.
    op.execute("CREATE UNIQUE INDEX tasks_one_assist ON dispatch.tasks (lead_task_id, department_code) "
               "WHERE lead_task_id IS NOT NULL")
    op.execute("ALTER TABLE dispatch.tasks DROP CONSTRAINT tasks_status_check")
    op.execute(f"ALTER TABLE dispatch.tasks ADD CONSTRAINT tasks_status_check CHECK (status IN ({_STATUSES}, "
               "'released'))")


def downgrade() -> None:
    op.execute("DELETE FROM dispatch.tasks WHERE lead_task_id IS NOT NULL")
    op.execute("ALTER TABLE dispatch.tasks DROP CONSTRAINT tasks_status_check")
    op.execute(f"ALTER TABLE dispatch.tasks ADD CONSTRAINT tasks_status_check CHECK (status IN ({_STATUSES}))")
    op.execute("DROP INDEX dispatch.tasks_one_assist")
    op.execute("DROP INDEX dispatch.tasks_one_lead")
    op.execute("ALTER TABLE dispatch.tasks ADD CONSTRAINT tasks_incident_id_key UNIQUE (incident_id)")
    op.execute("ALTER TABLE dispatch.tasks DROP COLUMN lead_task_id")
