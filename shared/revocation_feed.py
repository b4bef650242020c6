"""Keeps this process's revocation list (shared/revocation.py) current, from two sources:

- grid's event `grid.member.sessions_revoked`, on a queue of this process's own (every process
  must hear it, not one replica of a service): in force here within moments of grid's commit;
- a read of grid's `session_revocations` table every GRIDBUS_REVOCATION_POLL_SECONDS, the
  backstop when the broker or the relay is down or a message was missed: in force within that.

Every gridbus process starts it (services/registry.py `start`), before it takes calls."""
from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime, timedelta

from sqlalchemy import text

from shared import revocation
from shared.changefeed import ChangeFeed

log = logging.getLogger(__name__)

EVENT = "grid.member.sessions_revoked"
# Each poll reads again what changed this long before the last change it saw: a transaction that
# committed late with an earlier time is not missed.
OVERLAP = timedelta(seconds=60)
_READ = text("SELECT member_id, revoked_before, updated_at FROM grid.session_revocations "
             "WHERE CAST(:since AS timestamptz) IS NULL OR updated_at > CAST(:since AS timestamptz)")

_started: "RevocationFeed | None" = None
_lock = threading.Lock()


def start(amqp_uri: str, poll_seconds: float) -> "RevocationFeed":
    """This process's feed, started once: the table read once before this returns (so the process
    never takes a call with an empty list while grid has one), then the event and the poll."""
    global _started
    with _lock:
        if _started is None:
            _started = RevocationFeed(amqp_uri, poll_seconds)
            _started.start()
        return _started


class RevocationFeed:
    def __init__(self, amqp_uri: str, poll_seconds: float):
        self.poll_seconds = poll_seconds
        self._feed = ChangeFeed(amqp_uri, [EVENT])
        self._since: datetime | None = None
        self._stop = threading.Event()
        self.polls = 0

    def start(self) -> None:
        try:
            self.poll()
        except Exception as exc:  # the database not there yet: the poll's thread keeps trying
            log.warning("revocations: first read failed (%s); retrying every %.0fs", exc, self.poll_seconds)
        threading.Thread(target=self._poll_loop, name="revocations-poll", daemon=True).start()
        threading.Thread(target=self._event_loop, name="revocations-events", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._feed.stop()

    def poll(self) -> int:
        """Reads what changed since the last read (all, the first time); returns how many rows."""
        from shared.db import engine
        since = self._since - OVERLAP if self._since is not None else None
        with engine().connect() as conn:
            rows = conn.execute(_READ, {"since": since}).all()
        revocation.note_all({str(r.member_id): revocation.stamp(r.revoked_before.timestamp()) for r in rows})
        newest = max((r.updated_at for r in rows), default=None)
        if newest is not None and (self._since is None or newest > self._since):
            self._since = newest
        self.polls += 1
        return len(rows)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception as exc:
                log.warning("revocations: reading grid.session_revocations failed: %s", exc)

    def _event_loop(self) -> None:
        events = self._feed.subscribe()
        while not self._stop.is_set():
            try:
                event = events.get(timeout=1.0)
            except queue.Empty:
                continue
            data = event.get("data") or {}
            try:
                when = datetime.fromisoformat(data["revoked_before"]).timestamp()
                revocation.note(str(data["member_id"]), revocation.stamp(when))
            except (KeyError, TypeError, ValueError):
                log.warning("revocations: an event without member_id and revoked_before: %s", event.get("id"))
