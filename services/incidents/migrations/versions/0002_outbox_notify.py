"""incidents: NOTIFY the relays when outbox rows commit

Revision ID: 0002
Revises: 0001
"""
from alembic import op

from shared.outbox import drop_outbox_notify_ddl, outbox_notify_ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox_notify_ddl("incidents"):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_outbox_notify_ddl("incidents"):
        op.execute(statement)
