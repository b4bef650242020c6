"""Idempotent consumers: an event id is processed once per consumer.

The handler calls `first_delivery` inside the transaction that applies the event. A redelivered
event (the broker retried, the relay published twice, the consumer died before its ack) finds
its row and is skipped; the row commits or rolls back together with the change it guards."""
from __future__ import annotations

from sqlalchemy import column, table, text
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import CTE


def inbox_ddl(schema: str) -> list[str]:
    return [f"""CREATE TABLE {schema}.inbox (
        consumer text NOT NULL,
        event_id uuid NOT NULL,
        event_type text NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (consumer, event_id)
    )"""]


def first_delivery(session: Session | Connection, schema: str, consumer: str, event: dict) -> bool:
    """Claims the event for this consumer; False when it was already processed."""
    row = session.execute(
        text(f"INSERT INTO {schema}.inbox (consumer, event_id, event_type) VALUES (:c, :id, :t) "
             "ON CONFLICT DO NOTHING RETURNING 1"),
        {"c": consumer, "id": event["id"], "t": event["type"]}).first()
    return row is not None


def claim(schema: str, consumer: str, event: dict) -> CTE:
    """`first_delivery` as a CTE, to fold the claim into the handler's first statement: it
    returns the event's id when this delivery claimed it, no row when it was processed before.
    PostgreSQL runs the insert whether or not the statement reads it."""
    inbox = table("inbox", column("consumer"), column("event_id", UUID(as_uuid=False)), column("event_type"),
                  schema=schema)
    return (insert(inbox).values(consumer=consumer, event_id=event["id"], event_type=event["type"])
            .on_conflict_do_nothing().returning(inbox.c.event_id).cte("claim"))
