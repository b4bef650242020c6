"""Least privilege in the database, on the real PostgreSQL: the services run as a role that owns
nothing and may only do what shared/migrations.py grants it; every audit table is append-only
for it, and its trigger refuses changes even to the owner."""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import make_url

from services import registry
from shared.config import settings

AUDIT_TABLES = [(s.schema, t) for s in registry.SERVICES for t in s.append_only]


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def runtime(environment):
    with psycopg.connect(_dsn(settings().database_url)) as conn:
        yield conn


@pytest.fixture
def owner(environment):
    with psycopg.connect(_dsn(settings().owner_database_url)) as conn:
        yield conn


def refused(conn: psycopg.Connection, sql: str) -> str:
    """The error PostgreSQL answers `sql` with (the transaction is rolled back)."""
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql)
    conn.rollback()
    return str(caught.value)


def test_the_services_run_as_a_role_that_is_not_the_owner_and_owns_nothing(runtime):
    me, superuser = runtime.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    assert not superuser and me != make_url(settings().owner_database_url).username
    owned = runtime.execute("SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
                            "AND n.nspname = ANY(%s)", (list(registry.schemas()),)).fetchall()
    assert owned == []


@pytest.mark.parametrize("sql, words", [
    ("ALTER TABLE incidents.incidents ADD COLUMN x int", "must be owner"),
    ("ALTER TABLE incidents.history DISABLE TRIGGER history_append_only", "must be owner"),
    ("ALTER TABLE credit.records DISABLE TRIGGER USER", "must be owner"),
    ("DROP TRIGGER records_append_only ON credit.records", "must be owner"),
    ("DROP TABLE dispatch.task_history", "must be owner"),
    ("CREATE TABLE credit.mine (x int)", "permission denied for schema credit"),
    ("CREATE OR REPLACE FUNCTION credit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
     "permission denied for schema credit"),
    ("SET session_replication_role = replica", "permission denied"),
    ("UPDATE incidents.alembic_version SET version_num = '0001'", "permission denied"),
])
def test_the_services_role_cannot_change_the_schema_or_go_around_triggers(runtime, sql, words):
    assert words in refused(runtime, sql)


@pytest.mark.parametrize("schema, table", AUDIT_TABLES)
def test_audit_tables_are_append_only_for_the_services_role(runtime, schema, table):
    for sql in (f"UPDATE {schema}.{table} SET {_noop(table)}", f"DELETE FROM {schema}.{table}",
                f"TRUNCATE {schema}.{table}"):
        assert f"permission denied for table {table}" in refused(runtime, sql)


@pytest.mark.parametrize("schema, table", AUDIT_TABLES)
def test_audit_tables_refuse_changes_even_from_their_owner(owner, schema, table):
    """TRUNCATE's trigger is per statement, so it fires however many rows there are (CASCADE:
    past the foreign keys of other audit tables, which refuse too); the row triggers call the
    same function (the next test checks they are there), and tests/incidents and tests/credit
    update and delete real rows as the owner."""
    assert "is append-only: TRUNCATE refused" in refused(owner, f"TRUNCATE {schema}.{table} CASCADE")


def test_the_chain_cannot_be_recomputed_by_the_services_role(runtime):
    assert "permission denied for table records" in refused(runtime, "UPDATE credit.records SET hash = prev_hash")
    assert "permission denied for table checkpoints" in refused(runtime, "DELETE FROM credit.checkpoints")


def test_the_declared_audit_tables_are_the_ones_with_append_only_triggers(owner):
    """services/registry.py says which tables are audit tables; the migrations add the triggers.
    Each declared table refuses UPDATE, DELETE and TRUNCATE, and no other table has the triggers."""
    rows = owner.execute("""
        SELECT n.nspname, c.relname, t.tgtype
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_proc p ON p.oid = t.tgfoid
        WHERE p.proname = 'refuse_change' AND NOT t.tgisinternal AND t.tgenabled = 'O'""").fetchall()
    events: dict[tuple[str, str], set[str]] = {}
    for schema, table, tgtype in rows:  # pg_trigger.tgtype bits: 8 DELETE, 16 UPDATE, 32 TRUNCATE; 2 BEFORE
        assert tgtype & 2, f"{schema}.{table}: the trigger must fire before the change"
        events.setdefault((schema, table), set()).update(
            name for bit, name in ((8, "DELETE"), (16, "UPDATE"), (32, "TRUNCATE")) if tgtype & bit)
    assert events == {key: {"UPDATE", "DELETE", "TRUNCATE"} for key in AUDIT_TABLES}


def test_the_services_role_has_exactly_its_grants(runtime):
    granted: dict[tuple[str, str], set[str]] = {}
    for schema, table, privilege in runtime.execute(
            "SELECT table_schema, table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = current_user AND table_schema = ANY(%s)", (list(registry.schemas()),)):
        granted.setdefault((schema, table), set()).add(privilege)
    for service in registry.SERVICES:
        if not service.schema:
            continue
        tables = [t for (t,) in runtime.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s",
                                                (service.schema,))]
        assert "alembic_version" in tables
        for table in tables:
            expected = {"SELECT"} if table == "alembic_version" else \
                {"SELECT", "INSERT"} if table in service.append_only else \
                {"SELECT", "INSERT", "UPDATE", "DELETE"} if table in service.deletes_from else \
                {"SELECT", "INSERT", "UPDATE"}
            assert granted.get((service.schema, table)) == expected, f"{service.schema}.{table}"


def _noop(table: str) -> str:
    """An assignment that changes nothing, for a table's UPDATE."""
    return {"records": "seq = seq", "repair_decisions": "application_id = application_id"}.get(table, "id = id")
