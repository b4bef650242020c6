"""Transactional outbox: events are rows written in the same transaction as the change, and a
relay publishes them to RabbitMQ with publisher confirms before marking them sent.

A crash before the commit loses both the change and the event; a crash after it leaves the row
for the relay; a crash between publish and mark publishes the same event id again, which
consumers drop (they are idempotent on the CloudEvents id). Published rows are kept: they are
the service's event store.

Envelope (CloudEvents 1.0, JSON, content type application/cloudevents+json):
  specversion, id, source, type, subject, time, datacontenttype, data,
  sequence: decimal string, 1, 2, 3... per source in the order of publication, without gaps: the
  relay numbers rows when it first takes them, after they committed (a number taken at insert
  would follow insert order, and transactions commit in another),
  subjectsequence: decimal string, 1, 2, 3... per subject (e.g. per incident), when the
  source numbers its subjects' changes (gaps mean a missed event).
Routing key on the topic exchange `gridbus.events`: the event type, `<service>.<entity>.<event>`.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import kombu
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from shared import failpoints
from shared.config import EVENTS_EXCHANGE, settings
from shared.timefmt import iso_utc

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json"


def outbox_ddl(schema: str) -> list[str]:
    """The outbox table of one service schema (used by that service's migration)."""
    return [
        f"""CREATE TABLE {schema}.outbox (
            sequence bigserial PRIMARY KEY,
            event_id uuid NOT NULL UNIQUE,
            type text NOT NULL,
            source text NOT NULL,
            subject text NOT NULL,
            time timestamptz NOT NULL DEFAULT clock_timestamp(),
            data jsonb NOT NULL,
            subject_sequence bigint,
            published_at timestamptz
        )""",
        f"CREATE INDEX outbox_unpublished ON {schema}.outbox (sequence) WHERE published_at IS NULL",
        f"CREATE INDEX outbox_time ON {schema}.outbox (time)",
    ]


def publication_sequence_ddl(schema: str) -> list[str]:
    """Moves `sequence` from insert time to publication time (outbox_ddl's table made it a
    bigserial, which concurrent transactions commit out of order, so subscribers saw it go back).
    `id` keeps the insert order as the key; `sequence` is NULL until the relay numbers the row,
    after its commit, under the source's relay lock; rows already published keep their number."""
    return [
        f"ALTER TABLE {schema}.outbox RENAME COLUMN sequence TO id",
        f"ALTER TABLE {schema}.outbox ADD COLUMN sequence bigint",
        f"UPDATE {schema}.outbox SET sequence = id WHERE published_at IS NOT NULL",
        f"CREATE UNIQUE INDEX outbox_sequence ON {schema}.outbox (sequence)",
        f"DROP INDEX {schema}.outbox_unpublished",
        f"CREATE INDEX outbox_unpublished ON {schema}.outbox (id) WHERE published_at IS NULL",
    ]


def drop_publication_sequence_ddl(schema: str) -> list[str]:
    return [
        f"DROP INDEX {schema}.outbox_unpublished",
        f"DROP INDEX {schema}.outbox_sequence",
        f"ALTER TABLE {schema}.outbox DROP COLUMN sequence",
        f"ALTER TABLE {schema}.outbox RENAME COLUMN id TO sequence",
        f"CREATE INDEX outbox_unpublished ON {schema}.outbox (sequence) WHERE published_at IS NULL",
    ]


def notify_channel(schema: str) -> str:
    return f"gridbus_outbox_{schema}"


def outbox_notify_ddl(schema: str) -> list[str]:
    """A NOTIFY on every commit that adds outbox rows, so relays wake at once instead of polling.
    PostgreSQL delivers it only if the transaction commits, and folds repeats within one."""
    return [
        f"""CREATE FUNCTION {schema}.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{notify_channel(schema)}', '');
            RETURN NULL;
        END $$""",
        f"CREATE TRIGGER outbox_notify AFTER INSERT ON {schema}.outbox "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.outbox_notify()",
    ]


def drop_outbox_notify_ddl(schema: str) -> list[str]:
    """Undoes outbox_notify_ddl (relays fall back to looking every idle_poll)."""
    return [f"DROP TRIGGER outbox_notify ON {schema}.outbox", f"DROP FUNCTION {schema}.outbox_notify()"]


def event_source(schema: str) -> str:
    """The CloudEvents source of a service's events: /gridbus/<service>, or with a deployment
    named (several deployments federated into one bus, shared/levels.py) /gridbus/<deployment>/<service>."""
    deployment = settings().deployment
    return f"/gridbus/{deployment}/{schema}" if deployment else f"/gridbus/{schema}"


def record_event(session: Session | Connection, schema: str, type_: str, subject: str, data: dict,
                 *, subject_sequence: int | None = None) -> str:
    """Adds an event to the caller's transaction; it leaves only if that transaction commits."""
    event_id = str(uuid.uuid4())
    session.execute(
        text(f"INSERT INTO {schema}.outbox (event_id, type, source, subject, data, subject_sequence) "
             "VALUES (:id, :type, :source, :subject, CAST(:data AS jsonb), :subseq)"),
        {"id": event_id, "type": type_, "source": event_source(schema), "subject": subject,
         "data": json.dumps(data, ensure_ascii=False), "subseq": subject_sequence},
    )
    return event_id


def record_events(session: Session | Connection, schema: str, events: list[tuple[str, str, dict]]) -> None:
    """Adds many events (type, subject, data) to the caller's transaction with one COPY, in order:
    a bulk write's events cost what its rows cost."""
    if not events:
        return
    connection = session.connection() if isinstance(session, Session) else session
    source = event_source(schema)
    with connection.connection.driver_connection.cursor() as cur:
        with cur.copy(f"COPY {schema}.outbox (event_id, type, source, subject, data) FROM STDIN") as copy:
            for type_, subject, data in events:
                copy.write_row((uuid.uuid4(), type_, source, subject,
                                json.dumps(data, ensure_ascii=False)))


def envelope(row) -> dict:
    out = {
        "specversion": "1.0",
        "id": str(row.event_id),
        "source": row.source,
        "type": row.type,
        "subject": row.subject,
        "time": iso_utc(row.time),
        "datacontenttype": "application/json",
        "sequence": str(row.sequence),
        "data": row.data,
    }
    if row.subject_sequence is not None:
        out["subjectsequence"] = str(row.subject_sequence)
    return out


def publish_row(producer: kombu.Producer, row, *, exchange, routing_key: str, headers: dict | None = None) -> None:
    """Publishes one stored event as its envelope: persistent, id as message_id."""
    producer.publish(
        json.dumps(envelope(row), ensure_ascii=False).encode(),
        exchange=exchange, routing_key=routing_key,
        content_type=CONTENT_TYPE, content_encoding="utf-8",
        delivery_mode=2, message_id=str(row.event_id),
        headers={"ce_type": row.type, "ce_source": row.source, "ce_sequence": row.sequence, **(headers or {})},
    )


def events_exchange() -> kombu.Exchange:
    return kombu.Exchange(EVENTS_EXCHANGE, type="topic", durable=True)


class Relay:
    """Publishes one schema's outbox rows in the order of their commits, numbering them.

    Several copies may run (one per nameko replica): only the one holding the source's advisory
    lock publishes. The lock is a session lock on the relay's LISTEN connection, held for as long
    as that connection lives, so the numbering and the publishing that follows it are one
    writer's; a relay that dies loses its connection and the lock with it, and another takes over
    at its next look."""

    def __init__(self, bind: Engine, amqp_uri: str, schema: str, *, batch_size: int = 200,
                 poll_interval: float = 0.02, idle_poll: float = 1.0):
        self.engine = bind
        self.amqp_uri = amqp_uri
        self.schema = schema
        self.batch_size = batch_size
        self.poll_interval = poll_interval  # the first retry's delay after a failure
        self.idle_poll = idle_poll          # a look even without a NOTIFY: belt and braces
        self._listener: psycopg.Connection | None = None
        self._leading = False
        self.exchange = events_exchange()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._connection: kombu.Connection | None = None

    def _producer(self) -> kombu.Producer:
        if self._connection is None:
            # confirm_publish: basic_publish returns only once the broker has taken the message.
            self._connection = kombu.Connection(self.amqp_uri, transport_options={"confirm_publish": True},
                                                heartbeat=0)
            self._connection.ensure_connection(max_retries=3)
            self.exchange(self._connection.default_channel).declare()
        return self._connection.Producer(serializer="json")

    def _listen(self) -> psycopg.Connection:
        """A connection of its own, LISTENing for the schema's outbox NOTIFY (see outbox_notify_ddl)."""
        if self._listener is None:
            dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._listener = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
            self._listener.execute(f"LISTEN {notify_channel(self.schema)}")
        return self._listener

    def _lead(self) -> bool:
        """Whether this relay is the source's publisher: it takes the lock when it is free."""
        if not self._leading:
            self._leading = bool(self._listen().execute(
                "SELECT pg_try_advisory_lock(hashtext(%s))", (f"gridbus.outbox.{self.schema}",)).fetchone()[0])
            if self._leading:
                log.info("outbox relay %s: publishing", self.schema)
        return self._leading

    def _await_news(self) -> None:
        """Returns when a commit added outbox rows, wake() or stop() was called, or idle_poll passed.
        Notifications that came while publishing are queued on the connection and return at once."""
        listener = self._listen()
        deadline = time.monotonic() + self.idle_poll
        while not (self._stop.is_set() or self._wake.is_set()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # Short slices keep stop() and wake() (set from other threads) prompt.
            notified = False
            for _ in listener.notifies(timeout=min(remaining, 0.25), stop_after=1):
                notified = True
            if notified:
                break
        self._wake.clear()

    def close(self) -> None:
        self._leading = False  # the lock goes with the listener's session
        if self._listener is not None:
            try:
                self._listener.close()
            except Exception as exc:  # the database is already gone
                log.debug("outbox relay %s: closing a dead listener: %s", self.schema, exc)
            self._listener = None
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception as exc:  # the broker is already gone; nothing to close cleanly
                log.debug("outbox relay %s: closing a dead connection: %s", self.schema, exc)
            self._connection = None

    def _take_batch(self) -> list:
        """The rows to publish next, numbered: first any numbered but unpublished (a previous
        publisher died between numbering and marking: they go again with the same numbers), else
        the next committed rows, numbered after the last number in one statement and committed
        before they are published, so a crash can never give an event a second number."""
        columns = "id, sequence, event_id, type, source, subject, time, data, subject_sequence"
        with self.engine.begin() as conn:
            rows = conn.execute(text(
                f"SELECT {columns} FROM {self.schema}.outbox "
                "WHERE published_at IS NULL AND sequence IS NOT NULL ORDER BY sequence LIMIT :n"),
                {"n": self.batch_size}).all()
            if rows:
                return rows
            rows = conn.execute(text(
                f"""WITH last AS (SELECT coalesce(max(sequence), 0) AS n FROM {self.schema}.outbox),
                fresh AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM {self.schema}.outbox
                          WHERE published_at IS NULL AND sequence IS NULL ORDER BY id LIMIT :n)
                UPDATE {self.schema}.outbox o SET sequence = last.n + fresh.k FROM last, fresh
                WHERE o.id = fresh.id RETURNING {', '.join('o.' + c for c in columns.split(', '))}"""),
                {"n": self.batch_size}).all()
            return sorted(rows, key=lambda r: r.sequence)

    def publish_batch(self) -> int:
        """Publishes up to batch_size events; returns how many. Raises on broker or DB failure."""
        if not self._lead():
            return 0
        rows = self._take_batch()
        if not rows:
            return 0
        producer = self._producer()
        for row in rows:
            publish_row(producer, row, exchange=self.exchange, routing_key=row.type)
            failpoints.hit("relay.after_publish")
        with self.engine.begin() as conn:
            # One time for the batch: published_at then orders batches as sequence does.
            conn.execute(text(f"UPDATE {self.schema}.outbox SET published_at = statement_timestamp() "
                              "WHERE id = ANY(:ids)"), {"ids": [r.id for r in rows]})
        return len(rows)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        """Loops until stop(); survives broker and database outages, retrying with backoff."""
        backoff = self.poll_interval
        while not self._stop.is_set():
            try:
                self._listen()  # before publishing, so no commit after this batch goes unnoticed
                published = self.publish_batch()
                backoff = self.poll_interval
                if published < self.batch_size:
                    self._await_news()
            except Exception as exc:  # broker or database down: keep the rows, retry later
                log.warning("outbox relay %s: %s; retrying in %.1fs", self.schema, exc, backoff)
                self.close()
                backoff = min(backoff * 2 or 0.1, 5.0)
                self._stop.wait(backoff)
        self.close()


def main(argv=None) -> None:
    """Runs one schema's relay in the foreground (`python -m shared.outbox grid`)."""
    import argparse
    import signal

    from shared.config import start
    from shared.db import engine
    from shared.logs import setup_logging

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("schema")
    args = parser.parse_args(argv)
    s = start(f"{args.schema} outbox relay")  # in production: refuses development keys and default credentials
    setup_logging()
    relay = Relay(engine(s.database_url), s.amqp_uri, args.schema)
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    signal.signal(signal.SIGINT, lambda *_: relay.stop())
    log.info("outbox relay for %s started", args.schema)
    relay.run()


if __name__ == "__main__":
    main()
