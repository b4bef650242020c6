"""incidents: the outbox's `sequence` is the order of publication (the relay numbers rows after they
commit); `id` keeps the insert order

Revision ID: 0005
Revises: 0004
"""
from alembic import op

from shared.outbox import drop_publication_sequence_ddl, publication_sequence_ddl

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in publication_sequence_ddl("incidents"):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_publication_sequence_ddl("incidents"):
        op.execute(statement)
