"""dispatch: NOTIFY when rules or departments change, so processes reload their routing table

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# services.dispatch.routing_table.CHANNEL listens here.
CHANNEL = "gridbus_dispatch_routing"


def upgrade() -> None:
    # One NOTIFY per committed transaction that touched either table (PostgreSQL folds repeats).
    op.execute(f"""CREATE FUNCTION dispatch.routing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('{CHANNEL}', '');
        RETURN NULL;
    END $$""")
    for table in ("rules", "departments"):
        op.execute(f"CREATE TRIGGER {table}_routing_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                   f"ON dispatch.{table} FOR EACH STATEMENT EXECUTE FUNCTION dispatch.routing_changed()")


def downgrade() -> None:
    for table in ("rules", "departments"):
        op.execute(f"DROP TRIGGER {table}_routing_changed ON dispatch.{table}")
    op.execute("DROP FUNCTION dispatch.routing_changed()")
