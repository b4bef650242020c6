"""grid schema: units, members, assignments, outbox

Revision ID: 0001
Revises:
"""
from alembic import op

from shared.outbox import outbox_ddl

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE grid.units (
        code text PRIMARY KEY,
        level text NOT NULL CHECK (level IN ('city', 'district', 'street', 'community', 'grid')),
        name text NOT NULL,
        parent_code text REFERENCES grid.units (code) DEFERRABLE INITIALLY DEFERRED,
        ancestors text[] NOT NULL,
        geom geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom)),
        area_m2 double precision NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((level = 'city') = (parent_code IS NULL))
    )""")
    op.execute("CREATE INDEX units_geom ON grid.units USING gist (geom)")
    # locate() looks only at leaf grids.
    op.execute("CREATE INDEX units_leaf_geom ON grid.units USING gist (geom) WHERE level = 'grid'")
    op.execute("CREATE INDEX units_parent ON grid.units (parent_code)")
    op.execute("CREATE INDEX units_ancestors ON grid.units USING gin (ancestors)")
    op.execute("""
    CREATE TABLE grid.members (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        phone text NOT NULL,
        role text NOT NULL CHECK (role IN ('officer', 'dispatcher', 'admin')),
        active boolean NOT NULL DEFAULT true,
        on_duty boolean NOT NULL DEFAULT false,
        position geometry(Point, 4326),
        position_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        version bigint NOT NULL DEFAULT 1
    )""")
    op.execute("""
    CREATE TABLE grid.assignments (
        member_id uuid NOT NULL REFERENCES grid.members (id),
        unit_code text NOT NULL REFERENCES grid.units (code),
        is_primary boolean NOT NULL DEFAULT false,
        assigned_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (member_id, unit_code)
    )""")
    op.execute("CREATE UNIQUE INDEX assignments_one_primary ON grid.assignments (member_id) WHERE is_primary")
    op.execute("CREATE INDEX assignments_unit ON grid.assignments (unit_code)")
    for statement in outbox_ddl("grid"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE grid.outbox, grid.assignments, grid.members, grid.units")
