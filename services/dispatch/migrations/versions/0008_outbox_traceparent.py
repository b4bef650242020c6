"""dispatch: outbox rows keep the traceparent of the transaction that wrote them (the trace goes on
through the relay and the consumers)

Revision ID: 0008
Revises: 0007
"""
from alembic import op

from shared.outbox import drop_traceparent_ddl, traceparent_ddl

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in traceparent_ddl("dispatch"):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_traceparent_ddl("dispatch"):
        op.execute(statement)
