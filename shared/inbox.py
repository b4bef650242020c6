"""Idempotent consumers: an event id is processed once per consumer.

The handler calls `first_delivery` inside the transaction that applies the event. A redelivered
event (the broker retried, the relay published twice, the consumer died before its ack) finds
its row and is skipped; the row commits or rolls back together with the change it guards."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


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
