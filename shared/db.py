"""The SQLAlchemy engine and sessions: one pooled engine per database, and a session in one
transaction per unit of work (operations open their own, whichever entry point calls them)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

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

