"""The live delivery: every event on `gridbus.events` reaches the delivery's own queue
(`gridbus.subscriptions.deliver`, bound to `#`), and from there each subscription whose patterns
match it gets it in its queue, filtered to its scope and grant (filtering.py). Subscribers' queues
are bound to nothing, so nothing reaches them unfiltered.

In the order the queue holds them (batch after batch), and a single active consumer among the
replicas: each source's events reach a subscriber in their `sequence` order, as they would from a
queue bound to the exchange. An event is acknowledged once the broker confirmed every copy, so a
crash in between delivers it again (subscribers deduplicate on the id)."""
from __future__ import annotations

import json
import logging
import threading
import time

import kombu
from kombu.mixins import ConsumerMixin

from services.subscriptions import domain, filtering, store
from services.subscriptions.operations import detach_direct_bindings, publish_envelope
from shared import observability, tls
from shared.broker_users import from_owner
from shared.db import session_scope
from shared.events import MalformedEvent, check_envelope, declare_subscription, retry_transient
from shared.publisher import ConfirmedPublisher

log = logging.getLogger(__name__)

QUEUE = "gridbus.subscriptions.deliver"


def declare(conn: kombu.Connection) -> kombu.Queue:
    """Its queue, bound to every event, with a dead-letter queue; one consumer at a time, so the
    replicas keep the order (the others stand by)."""
    return declare_subscription(conn, QUEUE, ["#"], arguments={"x-single-active-consumer": True})


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
    """Takes events in batches (up to BATCH, or what came within FLUSH_AFTER seconds): one read of
    the subscriptions, every copy published, one wait for the broker's confirms, then the batch
    acknowledged, in order."""

    BATCH = 200
    FLUSH_AFTER = 0.02

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.connection = tls.amqp_connection(amqp_uri)
        self.publisher = ConfirmedPublisher(amqp_uri)
        self.started = threading.Event()
        self.pending: list[tuple[kombu.Message, dict]] = []
        self.pending_since = 0.0

    def run(self, *args, **kwargs):
        try:
            detached = retry_transient(detach_direct_bindings)
            if detached:
                log.warning("%d subscriptions from before owners (organisation legacy) are unbound from the "
                            "events exchange and receive nothing: remove them", detached)
        except Exception:  # noqa: BLE001 - the delivery itself must run; the next start tries again
            log.exception("could not unbind legacy subscriptions from the events exchange")
        # Wakes up every FLUSH_AFTER seconds when idle, to send off a partial batch.
        super().run(*args, safety_interval=self.FLUSH_AFTER, **kwargs)

    def get_consumers(self, Consumer, channel):
        self.pending = []  # a new connection: the old channel's messages come again
        with tls.amqp_connection(self.amqp_uri) as conn:
            queue = declare(conn)
        return [Consumer(queues=[queue], on_message=self.on_message, prefetch_count=self.BATCH)]

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
        if not from_owner(event, message.properties.get("user_id")):
            # Subscribers get only what the owning service published (the broker vouches for user_id).
            log.error("dead-lettering event %s on %s: type %s published by %r, not its owner's user",
                      event.get("id"), QUEUE, event.get("type"), message.properties.get("user_id"))
            message.reject(requeue=False)
            observability.DEAD_LETTERED.labels(QUEUE, "impostor").inc()
            return
        if not self.pending:
            self.pending_since = time.monotonic()
        self.pending.append((message, event))
        if len(self.pending) >= self.BATCH:
            self.flush()

    def on_iteration(self) -> None:
        if self.pending and time.monotonic() - self.pending_since >= self.FLUSH_AFTER:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        try:
            unreadable = retry_transient(lambda: self.deliver([event for _, event in batch]))
        except Exception:  # noqa: BLE001 - back to the queue; past the delivery limit, dead-lettered
            log.exception("could not deliver %d events; returned to the queue", len(batch))
            for message, _ in batch:
                message.requeue()
            return
        for i, (message, _) in enumerate(batch):
            if i in unreadable:
                message.reject(requeue=False)
                observability.DEAD_LETTERED.labels(QUEUE, "malformed").inc()
            else:
                message.ack()

    def deliver(self, events: list[dict]) -> set[int]:
        """Publishes every copy of the events; returns the positions of those the filter could not
        read (a CloudEvent with a payload of the wrong shape), which retrying cannot help."""
        with session_scope() as session:
            subscriptions = store.deliveries(session)
        out, unreadable = [], set()
        for i, event in enumerate(events):
            try:
                out += copies(event, subscriptions)
            except Exception:  # noqa: BLE001 - one bad event must not hold up the batch
                log.exception("dead-lettering event %s on %s: its payload cannot be filtered", event.get("id"), QUEUE)
                unreadable.add(i)
        try:
            for queue, filtered in out:
                self.publisher.send(lambda producer, q=queue, e=filtered: publish_envelope(producer, e, q))
            self.publisher.wait_confirms()
        except Exception:
            self.publisher.close()  # which copies arrived is unknown: start the next try afresh
            raise
        return unreadable

    def stop(self) -> None:
        self.should_stop = True

    def close(self) -> None:
        self.publisher.close()
        self.connection.release()
