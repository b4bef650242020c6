"""dispatch: NOTIFY the relays when outbox rows commit

Revision ID: 0002
Revises: 0001
"""
from alembic import op

from shared.outbox import outbox_notify_ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox_notify_ddl("dispatch"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_notify ON dispatch.outbox")
    op.execute("DROP FUNCTION dispatch.outbox_notify()")
