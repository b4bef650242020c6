"""credit: records from other departments (authorities, lists, decisions, publication periods),
credit repair, and access-log rows for subjects the registry does not hold

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KINDS = "'violation', 'commendation', 'annulment', 'penalty', 'licence', 'list_entry', 'repair'"


def upgrade() -> None:
    # Loaded from the operator's authorities file; a code missing from a later file is
    # deactivated, never deleted, so records keep their authority.
    op.execute("""
    CREATE TABLE credit.actions (
        code text PRIMARY KEY,
        description text NOT NULL,
        active boolean NOT NULL DEFAULT true
    )""")
    op.execute("""
    CREATE TABLE credit.lists (
        code text PRIMARY KEY,
        name text NOT NULL,
        colour text NOT NULL CHECK (colour IN ('black', 'red')),
        computed boolean NOT NULL,
        restricts text[] NOT NULL,
        active boolean NOT NULL DEFAULT true
    )""")
    op.execute("""
    CREATE TABLE credit.authorities (
        code text PRIMARY KEY,
        name text NOT NULL,
        kinds text[] NOT NULL,
        lists text[] NOT NULL,
        active boolean NOT NULL DEFAULT true,
        loaded_at timestamptz NOT NULL DEFAULT now()
    )""")
    # New columns only: adding them rewrites no row, so the append-only trigger never fires.
    op.execute("ALTER TABLE credit.records DROP CONSTRAINT records_kind_check")
    op.execute(f"ALTER TABLE credit.records ADD CONSTRAINT records_kind_check CHECK (kind IN ({KINDS}))")
    op.execute("""
    ALTER TABLE credit.records
        ADD COLUMN authority text REFERENCES credit.authorities (code),
        ADD COLUMN legal_basis text,
        ADD COLUMN decision_number text,
        ADD COLUMN decision_date date,
        ADD COLUMN summary text,
        ADD COLUMN list_code text REFERENCES credit.lists (code),
        ADD COLUMN published_from date,
        ADD COLUMN published_until date,
        ADD CONSTRAINT records_decision_complete CHECK (
            (authority IS NULL) = (decision_number IS NULL) AND (authority IS NULL) = (decision_date IS NULL)),
        ADD CONSTRAINT records_list_entry CHECK ((kind = 'list_entry') = (list_code IS NOT NULL)),
        ADD CONSTRAINT records_publication CHECK (
            (published_from IS NULL) = (published_until IS NULL) AND published_from <= published_until)""")
    # One record per decision, however often a department sends it.
    op.execute("CREATE UNIQUE INDEX records_decision ON credit.records (authority, decision_number) "
               "WHERE decision_number IS NOT NULL")
    op.execute("CREATE INDEX subjects_enterprise_name ON credit.subjects (name) WHERE type = 'enterprise'")
    # A restriction check may ask about an enterprise the registry does not hold: logged by its code.
    op.execute("ALTER TABLE credit.access_log ALTER COLUMN subject_id DROP NOT NULL, "
               "ADD COLUMN subject_ref text, "
               "ADD CONSTRAINT access_log_names_a_subject CHECK (subject_id IS NOT NULL OR subject_ref IS NOT NULL)")
    # Credit repair: applications and decisions are appended, never changed.
    op.execute("""
    CREATE TABLE credit.repair_applications (
        id uuid PRIMARY KEY,
        record_id uuid NOT NULL REFERENCES credit.records (id),
        subject_id uuid NOT NULL REFERENCES credit.subjects (id),
        applicant text NOT NULL,
        evidence text NOT NULL,
        corrected_on date NOT NULL,
        applied_on date NOT NULL,
        received_by text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""")
    op.execute("CREATE INDEX repair_applications_record ON credit.repair_applications (record_id)")
    op.execute("CREATE INDEX repair_applications_subject ON credit.repair_applications (subject_id, at)")
    op.execute("""
    CREATE TABLE credit.repair_decisions (
        application_id uuid PRIMARY KEY REFERENCES credit.repair_applications (id),
        approved boolean NOT NULL,
        reason text NOT NULL,
        decided_by text NOT NULL,
        repair_record_id uuid REFERENCES credit.records (id),
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        CHECK (approved = (repair_record_id IS NOT NULL))
    )""")
    for table in ("repair_applications", "repair_decisions"):
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON credit.{table} "
                   "FOR EACH ROW EXECUTE FUNCTION credit.refuse_change()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON credit.{table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION credit.refuse_change()")


def downgrade() -> None:
    op.execute("DROP TABLE credit.repair_decisions, credit.repair_applications")
    op.execute("ALTER TABLE credit.access_log DROP CONSTRAINT access_log_names_a_subject, DROP COLUMN subject_ref")
    op.execute("DROP INDEX credit.subjects_enterprise_name")
    op.execute("DROP INDEX credit.records_decision")
    op.execute("ALTER TABLE credit.records DROP CONSTRAINT records_publication, DROP CONSTRAINT records_list_entry, "
               "DROP CONSTRAINT records_decision_complete, DROP COLUMN authority, DROP COLUMN legal_basis, "
               "DROP COLUMN decision_number, DROP COLUMN decision_date, DROP COLUMN summary, DROP COLUMN list_code, "
               "DROP COLUMN published_from, DROP COLUMN published_until")
    op.execute("ALTER TABLE credit.records DROP CONSTRAINT records_kind_check")
    op.execute("ALTER TABLE credit.records ADD CONSTRAINT records_kind_check "
               "CHECK (kind IN ('violation', 'commendation', 'annulment'))")
    op.execute("DROP TABLE credit.authorities, credit.lists, credit.actions")
