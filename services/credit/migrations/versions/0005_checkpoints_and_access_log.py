"""credit: the access log is append-only; the chain's signed checkpoints (append-only too); the
refusal names the table it refuses for (0001's message named credit.records for every table)

Revision ID: 0005
Revises: 0004
"""
from alembic import op

from shared.migrations import append_only_ddl

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # What credit published as credit.chain.checkpoint: the chain's head, signed (Ed25519) over
    # services/credit/checkpoint.py's canonical form. VerifyChain compares the chain with the last.
    op.execute("""
    CREATE TABLE credit.checkpoints (
        id bigserial PRIMARY KEY,
        head_record_id uuid,              -- NULL while the chain is empty
        head_hash text NOT NULL,
        record_count bigint NOT NULL CHECK (record_count >= 0),
        at timestamptz NOT NULL,
        key_id text NOT NULL,
        signature text NOT NULL
    )""")
    for statement in append_only_ddl("credit", "checkpoints") + append_only_ddl("credit", "access_log"):
        op.execute(statement)  # append_only_ddl replaces credit.refuse_change with the message naming its table
    for table in ("records", "repair_applications", "repair_decisions"):
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON credit.{table} FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TRIGGER access_log_no_truncate ON credit.access_log")
    op.execute("DROP TRIGGER access_log_append_only ON credit.access_log")
    op.execute("DROP TABLE credit.checkpoints")
