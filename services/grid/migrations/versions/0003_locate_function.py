"""grid: grid.locate(lon, lat), the border rule's one source

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The leaf grid covering a point; on a border shared by several grids the lowest code wins.
    # Grid's Locate and incidents' pinning both call it. A plain SQL function, STABLE and not
    # STRICT, so PostgreSQL inlines it: the same index scan as the query written out, and the
    # columns a caller does not select are never read.
    op.execute("""
    CREATE FUNCTION grid.locate(lon double precision, lat double precision)
    RETURNS TABLE (code text, level text, name text, parent_code text, ancestors text[], lineage text[],
                   area_m2 double precision, updated_at timestamptz)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT u.code, u.level, u.name, u.parent_code, u.ancestors, u.ancestors || u.code, u.area_m2, u.updated_at
        FROM grid.units u
        WHERE u.level = 'grid' AND ST_Covers(u.geom, ST_SetSRID(ST_MakePoint(lon, lat), 4326))
        ORDER BY u.code
        LIMIT 1
    $$""")
    op.execute("COMMENT ON FUNCTION grid.locate(double precision, double precision) IS "
               "'The leaf grid covering (lon, lat), lowest code on a shared border; its lineage runs city to grid. "
               "Read by other services: see docs/service-contracts.md.'")


def downgrade() -> None:
    op.execute("DROP FUNCTION grid.locate(double precision, double precision)")
