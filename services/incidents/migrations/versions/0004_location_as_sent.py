"""incidents: a report's point as the phone sent it, in its datum (the stored location is WGS 84)

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL on rows stored before datums were taken: they were sent in WGS 84, as stored.
    op.execute("""ALTER TABLE incidents.incidents
        ADD COLUMN location_sent_lon double precision,
        ADD COLUMN location_sent_lat double precision,
        ADD COLUMN location_sent_datum text
            CHECK (location_sent_datum IN ('wgs84', 'cgcs2000', 'gcj02', 'bd09'))""")


def downgrade() -> None:
    op.execute("ALTER TABLE incidents.incidents DROP COLUMN location_sent_lon, DROP COLUMN location_sent_lat, "
               "DROP COLUMN location_sent_datum")
