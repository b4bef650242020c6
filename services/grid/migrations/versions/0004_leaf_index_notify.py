"""grid: NOTIFY when leaf grids change (processes rebuild their in-memory index); positions keep
the point as sent, in its datum

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# services.grid.store.LEAF_GRIDS_CHANNEL listens here.
CHANNEL = "gridbus_grid_leaves"
EVENTS = {"INSERT": "NEW", "UPDATE": "NEW", "DELETE": "OLD"}


def upgrade() -> None:
    # One NOTIFY per transaction that touched a leaf grid (PostgreSQL folds repeats and sends it
    # only on commit); statements that changed no leaf, like an import of unchanged units, stay quiet.
    op.execute(f"""CREATE FUNCTION grid.leaf_grids_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            PERFORM pg_notify('{CHANNEL}', '');
        ELSIF EXISTS (SELECT 1 FROM changed WHERE level = 'grid') THEN
            PERFORM pg_notify('{CHANNEL}', '');
        END IF;
        RETURN NULL;
    END $$""")
    # A trigger with a transition table takes one event, hence one per event.
    for event, table in EVENTS.items():
        op.execute(f"CREATE TRIGGER leaf_grids_{event.lower()} AFTER {event} ON grid.units "
                   f"REFERENCING {table} TABLE AS changed "
                   "FOR EACH STATEMENT EXECUTE FUNCTION grid.leaf_grids_changed()")
    op.execute("CREATE TRIGGER leaf_grids_truncate AFTER TRUNCATE ON grid.units "
               "FOR EACH STATEMENT EXECUTE FUNCTION grid.leaf_grids_changed()")
    op.execute("""ALTER TABLE grid.members
        ADD COLUMN position_sent_lon double precision,
        ADD COLUMN position_sent_lat double precision,
        ADD COLUMN position_sent_datum text
            CHECK (position_sent_datum IN ('wgs84', 'cgcs2000', 'gcj02', 'bd09'))""")


def downgrade() -> None:
    op.execute("ALTER TABLE grid.members DROP COLUMN position_sent_lon, DROP COLUMN position_sent_lat, "
               "DROP COLUMN position_sent_datum")
    for event in (*EVENTS, "TRUNCATE"):
        op.execute(f"DROP TRIGGER leaf_grids_{event.lower()} ON grid.units")
    op.execute("DROP FUNCTION grid.leaf_grids_changed()")
