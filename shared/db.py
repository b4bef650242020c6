"""The SQLAlchemy engine and sessions: a context manager for plain code (gRPC, CLI) and a
nameko dependency provider for nameko workers. Both give one transaction per unit of work."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from shared.config import settings

_engines: dict[str, Engine] = {}


def engine(url: str | None = None) -> Engine:
    """One pooled engine per URL per process."""
    url = url or settings().database_url
    if url not in _engines:
        _engines[url] = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                                      connect_args={"application_name": "gridbus"})
    return _engines[url]


def dispose_engines() -> None:
    for e in _engines.values():
        e.dispose()
    _engines.clear()


@contextmanager
def session_scope(bind: Engine | None = None) -> Iterator[Session]:
    """A session in a transaction: committed on success, rolled back on any error."""
    with Session(bind or engine(), expire_on_commit=False) as session:
        with session.begin():
            yield session


class Database(DependencyProvider):
    """nameko: `db = Database()`, then `with self.db.session() as s:` in an entry point."""

    class _Handle:
        def __init__(self, bind: Engine):
            self.engine = bind

        def session(self):
            return session_scope(self.engine)

    def setup(self):
        self._engine = engine(self.container.config.get("DATABASE_URL") or settings().database_url)

    def get_dependency(self, worker_ctx):
        return self._Handle(self._engine)
