"""Database migrations: alembic, one schema per service in one PostgreSQL database.

Each service keeps its revisions in its own folder (services/registry.py lists them); its
env.py calls run_env.

Two roles (docs/security.md): migrations run as the owner (GRIDBUS_MIGRATION_DATABASE_URL),
which owns the schemas, tables, functions and triggers; the services run as the role of
GRIDBUS_DATABASE_URL, which owns nothing, and after every upgrade gets exactly this on each
service's schema: USAGE; SELECT on every table; INSERT and UPDATE on its tables, DELETE only on
those the service deletes rows from, and on append-only (audit) tables only INSERT; USAGE on the
sequences. So it cannot ALTER or DROP a table, disable a trigger, or change an audit row. When
both URLs name the same role (development), there is nothing to grant."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from shared.config import settings


@dataclass(frozen=True)
class Schema:
    """A service's schema, its migrations, and what the services' role may do in it."""
    name: str
    folder: Path
    append_only: tuple[str, ...] = ()   # tables: INSERT and SELECT only, and a trigger refuses changes
    deletes_from: tuple[str, ...] = ()  # tables the service deletes rows from


def append_only_ddl(schema: str, table: str) -> list[str]:
    """Triggers that refuse UPDATE, DELETE and TRUNCATE on `schema.table` whoever asks (its
    owner and superusers included, unless they disable the trigger first), with the function
    they call (one per schema, made or replaced here), and the privileges revoked from PUBLIC."""
    return [
        f"""CREATE OR REPLACE FUNCTION {schema}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$""",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {schema}.{table} "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {schema}.{table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change()",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{table} FROM PUBLIC",
    ]


def runtime_role(owner_url: str, runtime_url: str) -> str | None:
    """The services' role, when it is not the owner's."""
    owner, runtime = make_url(owner_url).username, make_url(runtime_url).username
    return runtime if runtime and runtime != owner else None


def _quoted(conn: Connection, name: str) -> str:
    return conn.execute(text("SELECT quote_ident(:n)"), {"n": name}).scalar_one()


def grant_runtime(conn: Connection, schemas: Iterable[Schema], role: str) -> None:
    """Gives the services' role what it needs on each schema, and nothing else (the module's
    docstring); run after every upgrade, so tables that migrations add are covered."""
    who = _quoted(conn, role)
    for schema in schemas:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                              {"s": schema.name}).scalars().all()
        unknown = set(schema.append_only + schema.deletes_from) - set(tables)
        if unknown:
            raise RuntimeError(f"schema {schema.name} has no table {', '.join(sorted(unknown))}")
        conn.execute(text(f"GRANT USAGE ON SCHEMA {schema.name} TO {who}"))
        conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema.name} FROM {who}"))
        conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema.name} TO {who}"))
        for table in tables:
            if table == "alembic_version":
                continue
            if table in schema.append_only:
                granted = "INSERT"
            else:
                granted = "INSERT, UPDATE, DELETE" if table in schema.deletes_from else "INSERT, UPDATE"
            conn.execute(text(f"GRANT {granted} ON {schema.name}.{_quoted(conn, table)} TO {who}"))
        conn.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema.name} FROM {who}"))
        conn.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema.name} TO {who}"))


def _config(schema: str, folder: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    cfg.attributes["url"] = url
    cfg.attributes["schema"] = schema
    return cfg


def run_env() -> None:
    """The body of every service's migrations/env.py."""
    from alembic import context

    url = context.config.attributes.get("url") or settings().owner_database_url
    schema = context.config.attributes.get("schema") or context.config.get_main_option("schema")
    bind = create_engine(url, poolclass=NullPool)
    with bind.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        conn.commit()
        context.configure(connection=conn, version_table_schema=schema)
        with context.begin_transaction():
            context.run_migrations()
    bind.dispose()


def upgrade(schemas: Iterable[Schema], url: str | None = None, runtime_url: str | None = None) -> None:
    """Migrates each schema to head, in the order given, as the owner (`url`, default
    GRIDBUS_MIGRATION_DATABASE_URL), then grants the services' role (that of `runtime_url`,
    default GRIDBUS_DATABASE_URL) what it needs. Safe to run from several processes at once."""
    schemas = list(schemas)
    url = url or settings().owner_database_url
    role = runtime_role(url, runtime_url or settings().database_url)
    bind = create_engine(url, poolclass=NullPool)
    with bind.connect() as conn:
        # PostGIS must be there before any schema uses it; needs a privileged role the first time.
        conn.execute(text("SELECT pg_advisory_lock(hashtext('gridbus.migrations'))"))
        try:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            conn.commit()
            for schema in schemas:
                command.upgrade(_config(schema.name, schema.folder, url), "head")
            if role:
                grant_runtime(conn, schemas, role)
                conn.commit()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('gridbus.migrations'))"))
            conn.commit()
    bind.dispose()
