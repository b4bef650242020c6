"""Transactional outbox: events are rows written in the same transaction as the change, and a
relay publishes them to RabbitMQ with publisher confirms (a batch in flight at once, its
confirms awaited together: shared/publisher.py) before marking them sent.

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

from shared import failpoints, observability
from shared.config import EVENTS_EXCHANGE, settings
from shared.publisher import ConfirmedPublisher
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


def traceparent_ddl(schema: str) -> list[str]:
    """The W3C traceparent of the transaction that wrote the row (shared/observability.py), so
    the relay's publication and the consumers join its trace."""
    return [f"ALTER TABLE {schema}.outbox ADD COLUMN traceparent text"]


def drop_traceparent_ddl(schema: str) -> list[str]:
    return [f"ALTER TABLE {schema}.outbox DROP COLUMN traceparent"]


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
        text(f"INSERT INTO {schema}.outbox (event_id, type, source, subject, data, subject_sequence, traceparent) "
             "VALUES (:id, :type, :source, :subject, CAST(:data AS jsonb), :subseq, :tp)"),
        {"id": event_id, "type": type_, "source": event_source(schema), "subject": subject,
         "data": json.dumps(data, ensure_ascii=False), "subseq": subject_sequence,
         "tp": observability.current_traceparent()},
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
        traceparent = observability.current_traceparent()
        with cur.copy(f"COPY {schema}.outbox (event_id, type, source, subject, data, traceparent) FROM STDIN") as copy:
            for type_, subject, data in events:
                copy.write_row((uuid.uuid4(), type_, source, subject,
                                json.dumps(data, ensure_ascii=False), traceparent))


def envelope(row, traceparent: str | None = None) -> dict:
    """The CloudEvent of a stored row; `traceparent`: the distributed-tracing extension attribute."""
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
    if traceparent:
        out["traceparent"] = traceparent
    return out


def publish_row(producer: kombu.Producer, row, *, exchange, routing_key: str, user_id: str,
                headers: dict | None = None, traceparent: str | None = None) -> None:
    """Publishes one stored event as its envelope: persistent, id as message_id, and as user_id
    the connection's user (the broker refuses any other), which consumers check."""
    producer.publish(
        json.dumps(envelope(row, traceparent), ensure_ascii=False).encode(),
        exchange=exchange, routing_key=routing_key,
        content_type=CONTENT_TYPE, content_encoding="utf-8",
        delivery_mode=2, message_id=str(row.event_id), user_id=user_id,
        headers={"ce_type": row.type, "ce_source": row.source, "ce_sequence": row.sequence, **(headers or {})},
    )


def events_exchange() -> kombu.Exchange:
    # Passive: the broker's administrator declares it (shared/broker_users.py); no service may
    # configure, so none may delete, the bus.
    return kombu.Exchange(EVENTS_EXCHANGE, type="topic", durable=True, passive=True)


class Relay:
    """Publishes one schema's outbox rows in the order of their commits, numbering them.

    Several copies may run (one per nameko replica): only the one holding the source's advisory
    lock publishes. The lock is a session lock on the relay's LISTEN connection, held for as long
    as that connection lives, so the numbering and the publishing that follows it are one
    writer's; a relay that dies loses its connection and the lock with it, and another takes over
    at its next look."""

    def __init__(self, bind: Engine, amqp_uri: str, schema: str, *, batch_size: int = 500,
                 poll_interval: float = 0.02, idle_poll: float = 1.0):
        self.engine = bind
        self.amqp_uri = amqp_uri
        self.schema = schema
        self.batch_size = batch_size
        self.poll_interval = poll_interval  # the first retry's delay after a failure
        self.idle_poll = idle_poll          # a look even without a NOTIFY: belt and braces
        self._listener: psycopg.Connection | None = None
        self._leading = False
        self._leftovers = True
        self.exchange = events_exchange()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._connection: ConfirmedPublisher | None = None

    def _publisher(self) -> ConfirmedPublisher:
        if self._connection is None:
            self._connection = ConfirmedPublisher(self.amqp_uri)
            self.exchange(self._connection.channel).declare()
        return self._connection

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
                self._leftovers = True  # a publisher before it may have died between numbering and marking
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
            self._connection.close()
            self._connection = None

    def _take_batch(self) -> list:
        """The rows to publish next, numbered: first any numbered but unpublished (a previous
        publisher died between numbering and marking: they go again with the same numbers), else
        the next committed rows, numbered after the last number in one statement and committed
        before they are published, so a crash can never give an event a second number."""
        columns = "id, sequence, event_id, type, source, subject, time, data, subject_sequence, traceparent"
        with self.engine.begin() as conn:
            if self._leftovers:  # only after taking the lead: while it leads, it marks all it numbers
                rows = conn.execute(text(
                    f"SELECT {columns} FROM {self.schema}.outbox "
                    "WHERE published_at IS NULL AND sequence IS NOT NULL ORDER BY sequence LIMIT :n"),
                    {"n": self.batch_size}).all()
                if rows:
                    return rows
                self._leftovers = False
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
        # Every row in flight at once, then one wait for the broker's confirms: marked only after
        # all were confirmed; a crash or a refusal before that publishes the batch again.
        publisher = self._publisher()
        for row in rows:
            with observability.publishing(row.source, row.type, str(row.event_id), row.traceparent) as traceparent:
                publisher.send(lambda producer, row=row, tp=traceparent: publish_row(
                    producer, row, exchange=self.exchange, routing_key=row.type, user_id=publisher.user_id,
                    traceparent=tp))
        publisher.wait_confirms()
        failpoints.hit("relay.after_publish")
        with self.engine.begin() as conn:
            # One time for the batch: published_at then orders batches as sequence does.
            lags = conn.execute(text(
                f"UPDATE {self.schema}.outbox SET published_at = statement_timestamp() WHERE id = ANY(:ids) "
                "RETURNING extract(epoch FROM published_at - time)"), {"ids": [r.id for r in rows]}).scalars().all()
            if len(rows) == self.batch_size:  # more may wait: how many
                backlog = conn.execute(text(f"SELECT count(*) FROM {self.schema}.outbox "
                                            "WHERE published_at IS NULL")).scalar()
            else:
                backlog = 0
        self._observe(lags, backlog)
        return len(rows)

    def _observe(self, lags: list, backlog: int) -> None:
        source = self.schema
        observability.OUTBOX_PUBLISHED.labels(source).inc(len(lags))
        observability.OUTBOX_BACKLOG.labels(source).set(backlog)
        histogram = observability.OUTBOX_LAG.labels(source)
        for lag in lags:
            histogram.observe(float(lag))

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
    observability.start(f"{args.schema}-relay", s, 0)  # GRIDBUS_METRICS_PORT, or a free port it logs
    relay = Relay(engine(s.database_url), s.amqp_uri, args.schema)
    signal.signal(signal.SIGTERM, lambda *_: relay.stop())
    signal.signal(signal.SIGINT, lambda *_: relay.stop())
    log.info("outbox relay for %s started", args.schema)
    relay.run()


if __name__ == "__main__":
    main()
