"""incidents: the history's privileges revoked from PUBLIC (its triggers are 0001's), and an
index for Open311's public listing (requests submitted through Open311, newest first)

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON incidents.history FROM PUBLIC")
    op.execute("CREATE INDEX incidents_open311 ON incidents.incidents (seq) WHERE reporter_id LIKE 'open311:%'")


def downgrade() -> None:
    op.execute("DROP INDEX incidents.incidents_open311")
