"""grid: outbox rows keep the traceparent of the transaction that wrote them (the trace goes on
through the relay and the consumers)

Revision ID: 0006
Revises: 0005
"""
from alembic import op

from shared.outbox import drop_traceparent_ddl, traceparent_ddl

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in traceparent_ddl("grid"):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_traceparent_ddl("grid"):
        op.execute(statement)
