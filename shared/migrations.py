"""Database migrations: alembic, one schema per service in one PostgreSQL database.

Each service keeps its revisions in its own folder (services/registry.py lists them); its
env.py calls run_env."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from shared.config import settings


def _config(schema: str, folder: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    cfg.attributes["url"] = url
    cfg.attributes["schema"] = schema
    return cfg


def run_env() -> None:
    """The body of every service's migrations/env.py."""
    from alembic import context

    url = context.config.attributes.get("url") or settings().database_url
    schema = context.config.attributes.get("schema") or context.config.get_main_option("schema")
    bind = create_engine(url, poolclass=NullPool)
    with bind.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        conn.commit()
        context.configure(connection=conn, version_table_schema=schema)
        with context.begin_transaction():
            context.run_migrations()
    bind.dispose()


def upgrade(migrations: Iterable[tuple[str, Path]], url: str | None = None) -> None:
    """Migrates each (schema, migrations folder) to head, in the order given. Safe to run from
    several processes at once."""
    url = url or settings().database_url
    bind = create_engine(url, poolclass=NullPool)
    with bind.connect() as conn:
        # PostGIS must be there before any schema uses it; needs a privileged role the first time.
        conn.execute(text("SELECT pg_advisory_lock(hashtext('gridbus.migrations'))"))
        try:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            conn.commit()
            for schema, folder in migrations:
                command.upgrade(_config(schema, folder, url), "head")
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('gridbus.migrations'))"))
            conn.commit()
    bind.dispose()
