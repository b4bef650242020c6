"""subscriptions belong to organisations, with a scope and a grant of personal fields

Subscriptions made before have no owner: they go to the organisation `legacy`, whose scope is
empty, so they receive nothing until an operator removes them (which deletes their queues).

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE subscriptions.organisations (
        id text PRIMARY KEY,
        name text NOT NULL,
        scope text[] NOT NULL,              -- unit codes it may subscribe to (their subtrees)
        grants text[] NOT NULL DEFAULT '{}', -- kinds of personal fields it may receive
        active boolean NOT NULL DEFAULT true,
        registered_by text NOT NULL,
        registered_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("INSERT INTO subscriptions.organisations (id, name, scope, registered_by) "
               "SELECT 'legacy', 'subscriptions made before they had owners', '{}', 'migration 0002' "
               "WHERE EXISTS (SELECT 1 FROM subscriptions.subscriptions)")
    op.execute("ALTER TABLE subscriptions.replays DROP CONSTRAINT replays_subscription_fkey")
    op.execute("ALTER TABLE subscriptions.subscriptions DROP CONSTRAINT subscriptions_pkey")
    op.execute("""
    ALTER TABLE subscriptions.subscriptions
        ADD COLUMN organisation text REFERENCES subscriptions.organisations (id),
        ADD COLUMN scope text[] NOT NULL DEFAULT '{}',
        ADD COLUMN grants text[] NOT NULL DEFAULT '{}',
        ADD COLUMN queue text""")
    op.execute("UPDATE subscriptions.subscriptions SET organisation = 'legacy', queue = 'gridbus.sub.' || name")
    op.execute("""
    ALTER TABLE subscriptions.subscriptions
        ALTER COLUMN organisation SET NOT NULL,
        ALTER COLUMN queue SET NOT NULL,
        ADD PRIMARY KEY (organisation, name),
        ADD UNIQUE (queue)""")
    op.execute("ALTER TABLE subscriptions.replays ADD COLUMN organisation text")
    op.execute("UPDATE subscriptions.replays SET organisation = 'legacy'")
    op.execute("""
    ALTER TABLE subscriptions.replays
        ALTER COLUMN organisation SET NOT NULL,
        ADD FOREIGN KEY (organisation, subscription)
            REFERENCES subscriptions.subscriptions (organisation, name) ON DELETE CASCADE""")


def downgrade() -> None:
    op.execute("DELETE FROM subscriptions.subscriptions WHERE organisation <> 'legacy'")
    op.execute("ALTER TABLE subscriptions.replays DROP COLUMN organisation")
    op.execute("ALTER TABLE subscriptions.subscriptions DROP CONSTRAINT subscriptions_pkey")
    op.execute("ALTER TABLE subscriptions.subscriptions DROP COLUMN organisation, DROP COLUMN scope, "
               "DROP COLUMN grants, DROP COLUMN queue")
    op.execute("ALTER TABLE subscriptions.subscriptions ADD PRIMARY KEY (name)")
    op.execute("ALTER TABLE subscriptions.replays ADD CONSTRAINT replays_subscription_fkey FOREIGN KEY "
               "(subscription) REFERENCES subscriptions.subscriptions (name) ON DELETE CASCADE")
    op.execute("DROP TABLE subscriptions.organisations")
