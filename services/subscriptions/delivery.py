"""The live delivery: every event on `gridbus.events` reaches the delivery's own queue
(`gridbus.subscriptions.deliver`, bound to `#`), and from there each subscription whose patterns
match it gets it in its queue, filtered to its scope and grant (filtering.py). Subscribers' queues
are bound to nothing, so nothing reaches them unfiltered.

One event at a time, in the order the queue holds them, and a single active consumer among the
replicas: each source's events reach a subscriber in their `sequence` order, as they would from a
queue bound to the exchange. An event is acknowledged once the broker confirmed every copy, so a
crash in between delivers it again (subscribers deduplicate on the id)."""
from __future__ import annotations

import json
import logging
import threading

import kombu
from kombu.mixins import ConsumerMixin

from services.subscriptions import domain, filtering, store
from services.subscriptions.operations import publish_envelope
from shared import observability
from shared.db import session_scope
from shared.events import DLX, MalformedEvent, check_envelope, queue_arguments, retry_transient
from shared.outbox import events_exchange
from shared.publisher import ConfirmedPublisher

log = logging.getLogger(__name__)

QUEUE = "gridbus.subscriptions.deliver"


def delivery_queue() -> kombu.Queue:
    return kombu.Queue(QUEUE, exchange=events_exchange(), routing_key="#", durable=True,
                       queue_arguments={**queue_arguments(QUEUE), "x-single-active-consumer": True})


def declare(conn: kombu.Connection) -> None:
    channel = conn.default_channel
    dlx = kombu.Exchange(DLX, type="direct", durable=True)
    dlx(channel).declare()
    kombu.Queue(f"{QUEUE}.dlq", exchange=dlx, routing_key=QUEUE, durable=True,
                queue_arguments={"x-queue-type": "quorum"})(channel).declare()
    delivery_queue()(channel).declare()


def copies(event: dict, subscriptions) -> list[tuple[str, dict]]:
    """(queue, filtered envelope) for each subscription that receives the event."""
    out = []
    for sub in subscriptions:
        if any(domain.matches(p, event["type"]) for p in sub.patterns):
            filtered = filtering.deliverable(
                event, filtering.Share(frozenset(sub.scope), frozenset(sub.grants)),
                filtering.Share(frozenset(sub.organisation_scope), frozenset(sub.organisation_grants)))
            if filtered is not None:
                out.append((sub.queue, filtered))
    return out


class Delivery(ConsumerMixin):
    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.connection = kombu.Connection(amqp_uri)
        self.publisher = ConfirmedPublisher(amqp_uri)
        self.started = threading.Event()

    def get_consumers(self, Consumer, channel):
        with kombu.Connection(self.amqp_uri) as conn:
            declare(conn)
        return [Consumer(queues=[delivery_queue()], on_message=self.on_message, prefetch_count=50)]

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self.started.set()

    def on_message(self, message) -> None:
        try:
            body = message.body
            event = check_envelope(json.loads(body if isinstance(body, str) else body.decode("utf-8")))
        except (ValueError, UnicodeDecodeError, MalformedEvent) as exc:
            log.error("dead-lettering a message on %s: %s", QUEUE, exc)
            message.reject(requeue=False)
            observability.DEAD_LETTERED.labels(QUEUE, "malformed").inc()
            return
        try:
            retry_transient(lambda: self.deliver(event))
        except Exception:  # noqa: BLE001 - back to the queue; past the delivery limit, dead-lettered
            log.exception("could not deliver event %s; returned to the queue", event.get("id"))
            message.requeue()
            return
        message.ack()

    def deliver(self, event: dict) -> int:
        with session_scope() as session:
            subscriptions = store.deliveries(session)
        out = copies(event, subscriptions)
        try:
            for queue, filtered in out:
                self.publisher.send(lambda producer, q=queue, e=filtered: publish_envelope(producer, e, q))
            self.publisher.wait_confirms()
        except Exception:
            self.publisher.close()  # which copies arrived is unknown: start the next try afresh
            raise
        return len(out)

    def stop(self) -> None:
        self.should_stop = True

    def close(self) -> None:
        self.publisher.close()
        self.connection.release()
