"""credit: NOTIFY the relays when outbox rows commit

Revision ID: 0003
Revises: 0002
"""
from alembic import op

from shared.outbox import outbox_notify_ddl

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox_notify_ddl("credit"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_notify ON credit.outbox")
    op.execute("DROP FUNCTION credit.outbox_notify()")
