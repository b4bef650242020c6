"""grid: sign-in: members' password hashes and user names, refresh tokens (hashes only), failed
sign-ins and locks, and the times before which a member's tokens are refused

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE grid.credentials (
        member_id uuid PRIMARY KEY REFERENCES grid.members (id),
        username text UNIQUE CHECK (username = lower(username)),
        password_hash text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("CREATE INDEX members_phone ON grid.members (phone)")
    # Keyed by the member when the login names one, else by a hash of the login: an unknown name
    # is locked exactly as a known one is, so a lock tells nobody whether the name exists.
    op.execute("""
    CREATE TABLE grid.signin_failures (
        login_key text PRIMARY KEY,
        failures integer NOT NULL DEFAULT 0,
        locked_until timestamptz,
        last_failed_at timestamptz NOT NULL DEFAULT now()
    )""")
    # A refresh token is used once: its use makes the next one of its family (one sign-in); a
    # used one presented again revokes the family. Only the SHA-256 of each token is kept.
    op.execute("""
    CREATE TABLE grid.refresh_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        family_id uuid NOT NULL,
        member_id uuid NOT NULL REFERENCES grid.members (id),
        token_hash bytea NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        revoked_at timestamptz
    )""")
    op.execute("CREATE INDEX refresh_tokens_family ON grid.refresh_tokens (family_id)")
    op.execute("CREATE INDEX refresh_tokens_member_live ON grid.refresh_tokens (member_id) "
               "WHERE used_at IS NULL AND revoked_at IS NULL")
    # Every process refuses a member's tokens issued before revoked_before (shared/revocation.py);
    # it polls this table by updated_at as the backstop of grid's event.
    op.execute("""
    CREATE TABLE grid.session_revocations (
        member_id uuid PRIMARY KEY REFERENCES grid.members (id),
        revoked_before timestamptz NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("CREATE INDEX session_revocations_updated ON grid.session_revocations (updated_at)")


def downgrade() -> None:
    for table in ("session_revocations", "refresh_tokens", "signin_failures", "credentials"):
        op.execute(f"DROP TABLE grid.{table}")
    op.execute("DROP INDEX grid.members_phone")
