"""The active rules and the departments' areas, read once per process and kept until they change.

Routing an incident needs every active rule and department; reading them for every event was a
third of what a reported incident cost dispatch. A trigger on both tables (migration 0005) sends
a PostgreSQL NOTIFY when a transaction that changed either commits, from any process; each user
of the table first takes the notifications already delivered on its own LISTEN connection (a
look at the socket, no round trip) and reloads when there was one. The connection listens before
the first load, so no commit between the two goes unheard; if it breaks, the table is reloaded
until it listens again."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

import psycopg
from sqlalchemy.orm import Session

from services.dispatch import domain, store

log = logging.getLogger(__name__)

CHANNEL = "gridbus_dispatch_routing"


@dataclass(frozen=True)
class Routing:
    rules: list[domain.Rule]
    served: dict[str, list[str]]   # active department -> the unit codes it serves

    def serves(self) -> Callable[[str, list[str]], bool]:
        served = self.served
        return lambda code, lineage: code in served and not set(served[code]).isdisjoint(lineage)


def load(session: Session) -> Routing:
    return Routing(store.active_rules(session),
                   {d.code: list(d.serves) for d in store.departments(session) if d.active})


class RoutingTable:
    def __init__(self, dsn: str):
        self._dsn = dsn
        self._listener: psycopg.Connection | None = None
        self._routing: Routing | None = None
        self._lock = threading.Lock()
        self.loads = 0

    def _changed(self) -> bool:
        """Whether a change may have committed since the last load (always, when not listening)."""
        try:
            if self._listener is None:
                self._listener = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
                self._listener.execute(f"LISTEN {CHANNEL}")
                return True
            # Drain every notification already here: a burst of changes is one reload, not one per call.
            changed = False
            while any(True for _ in self._listener.notifies(timeout=0)):
                changed = True
            return changed
        except psycopg.Error as exc:
            log.warning("dispatch routing table: not listening (%s); reading the rules each time", exc)
            if self._listener is not None:
                try:
                    self._listener.close()
                except psycopg.Error:
                    pass
                self._listener = None
            return True

    def get(self, session: Session) -> Routing:
        with self._lock:
            if self._changed() or self._routing is None:
                self._routing = load(session)
                self.loads += 1
            return self._routing

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None


_table: RoutingTable | None = None
_table_lock = threading.Lock()


def routing(session: Session) -> Routing:
    """This process's routing table, current as of the notifications delivered so far."""
    global _table
    if _table is None:
        with _table_lock:
            if _table is None:
                url = session.get_bind().url
                _table = RoutingTable(url.set(drivername="postgresql").render_as_string(hide_password=False))
    return _table.get(session)
