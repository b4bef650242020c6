"""incidents: the categories' filing and closing criteria and whether their verification must
be independent (services/incidents/criteria.py)

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE incidents.categories ADD COLUMN file_requires text[] NOT NULL DEFAULT '{}', "
               "ADD COLUMN close_requires text[] NOT NULL DEFAULT '{}', "
               "ADD COLUMN independent_verification boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE incidents.categories DROP COLUMN file_requires, DROP COLUMN close_requires, "
               "DROP COLUMN independent_verification")
