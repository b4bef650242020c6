"""Database migrations: alembic, one schema per service in one PostgreSQL database.

Each service keeps its revisions in services/<name>/migrations; its env.py calls run_env."""
from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from shared.config import settings

# In dependency order: a later service may read an earlier one's schema.
SERVICES = ("grid", "incidents", "dispatch", "credit", "subscriptions", "console")


def _config(service: str, url: str) -> Config:
    package = importlib.import_module(f"services.{service}")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(package.__file__).parent / "migrations"))
    cfg.attributes["url"] = url
    cfg.attributes["schema"] = service
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


def upgrade(url: str | None = None, services=SERVICES) -> None:
    """Migrates every service to head. Safe to run from several processes at once."""
    url = url or settings().database_url
    bind = create_engine(url, poolclass=NullPool)
    with bind.connect() as conn:
        # PostGIS must be there before any schema uses it; needs a privileged role the first time.
        conn.execute(text("SELECT pg_advisory_lock(hashtext('gridbus.migrations'))"))
        try:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            conn.commit()
            for service in services:
                command.upgrade(_config(service, url), "head")
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('gridbus.migrations'))"))
            conn.commit()
    bind.dispose()
