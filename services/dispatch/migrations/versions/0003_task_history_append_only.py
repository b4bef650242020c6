"""dispatch: the task history is append-only, as incidents' history is

Revision ID: 0003
Revises: 0002
"""
from alembic import op

from shared.migrations import append_only_ddl

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in append_only_ddl("dispatch", "task_history"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER task_history_no_truncate ON dispatch.task_history")
    op.execute("DROP TRIGGER task_history_append_only ON dispatch.task_history")
    op.execute("DROP FUNCTION dispatch.refuse_change()")
