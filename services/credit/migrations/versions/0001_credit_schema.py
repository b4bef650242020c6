"""credit schema: subjects, append-only hash-chained records, access log, unmatched events

Revision ID: 0001
Revises:
"""
from alembic import op

from shared.inbox import inbox_ddl
from shared.outbox import outbox_ddl

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE credit.subjects (
        id uuid PRIMARY KEY,
        type text NOT NULL CHECK (type IN ('enterprise', 'person')),
        uscc text UNIQUE,                 -- enterprises
        id_lookup text UNIQUE,            -- people: HMAC of the identity number, never the number
        id_masked text,                   -- people: 110105********002X
        name text NOT NULL,
        registered_grid text,
        name_verified boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        CHECK ((type = 'enterprise') = (uscc IS NOT NULL)),
        CHECK ((type = 'person') = (id_lookup IS NOT NULL AND id_masked IS NOT NULL))
    )""")
    op.execute("""
    CREATE TABLE credit.records (
        seq bigserial PRIMARY KEY,
        id uuid NOT NULL UNIQUE,
        subject_id uuid NOT NULL REFERENCES credit.subjects (id),
        kind text NOT NULL CHECK (kind IN ('violation', 'commendation', 'annulment')),
        category text NOT NULL,
        severity smallint NOT NULL CHECK (severity BETWEEN 1 AND 4),
        source text NOT NULL UNIQUE,      -- the event that caused it: the same event never makes two
        incident_id uuid,
        valid_from timestamptz NOT NULL,
        valid_until timestamptz NOT NULL,
        confirmed_by text NOT NULL,
        supersedes uuid REFERENCES credit.records (id),
        reason text,
        created_at timestamptz NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL UNIQUE,
        CHECK (valid_from < valid_until)
    )""")
    op.execute("CREATE INDEX records_subject ON credit.records (subject_id, seq)")
    op.execute("CREATE UNIQUE INDEX records_superseded_once ON credit.records (supersedes) WHERE supersedes IS NOT NULL")
    # History is appended, never rewritten: the database itself refuses, whoever asks.
    op.execute("""
    CREATE FUNCTION credit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'credit.records is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$""")
    op.execute("CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON credit.records "
               "FOR EACH ROW EXECUTE FUNCTION credit.refuse_change()")
    op.execute("CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON credit.records "
               "FOR EACH STATEMENT EXECUTE FUNCTION credit.refuse_change()")
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON credit.records FROM PUBLIC")
    op.execute("""
    CREATE TABLE credit.access_log (
        id bigserial PRIMARY KEY,
        subject_id uuid NOT NULL REFERENCES credit.subjects (id),
        reader_id text NOT NULL,
        reader_role text NOT NULL,
        what text NOT NULL,
        purpose text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""")
    op.execute("CREATE INDEX access_log_subject ON credit.access_log (subject_id, at)")
    op.execute("""
    CREATE TABLE credit.unmatched (
        id bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        incident_id uuid,
        subject_type text,
        subject_ref text,
        reason text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""")
    for ddl in outbox_ddl("credit") + inbox_ddl("credit"):
        op.execute(ddl)


def downgrade() -> None:
    op.execute("DROP SCHEMA credit CASCADE")
