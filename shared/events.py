"""Consuming gridbus events inside a nameko service.

`@on_event("incidents.incident.reported", ...)` decorates a method that receives one CloudEvents
envelope (a dict). Each decorated method gets its own durable queue on the `gridbus.events`
topic exchange, named `gridbus.<service>.<method>`:

- a quorum queue where the broker supports them (RabbitMQ >= 3.8), so it survives a node loss;
- the message is acknowledged only after the method returns, that is after its own commit;
- a transient failure (the database unreachable, a concurrent change won) is retried in
  place with backoff for up to TRANSIENT_PATIENCE seconds: an outage must not turn good
  events into dead letters;
- an event whose AMQP user_id (checked by the broker) is not the user of the service that owns
  its type (shared/broker_users.py) is dead-lettered at once, unseen by the method;
- when the method raises anything else, the message goes back to the queue; after
  DELIVERY_LIMIT deliveries the broker dead-letters it to `gridbus.<service>.<method>.dlq`
  (bound on `gridbus.dlx`), where an operator can read it and shovel it back;
- delivery is at least once: handlers make themselves idempotent with `shared.inbox`.
"""
from __future__ import annotations

import functools
import json
import logging
import time

import kombu
import kombu.serialization
from kombu import Exchange, Queue, binding
from nameko.messaging import Consumer

from shared import observability, tls
from shared.broker_users import DLX, from_owner
from shared.outbox import CONTENT_TYPE, events_exchange

log = logging.getLogger(__name__)

DELIVERY_LIMIT = 5
TRANSIENT_PATIENCE = 120.0
SERIALIZER = "cloudevents"
REQUIRED = ("specversion", "id", "source", "type", "subject", "time", "data")


class Undecodable:
    """A body that is not JSON. Decoding never fails, so the entrypoint can dead-letter it
    (kombu's own handling of a decode error would acknowledge and drop the message)."""

    def __init__(self, raw, error: Exception):
        self.raw, self.error = raw, error


def _decode(body):
    try:
        return json.loads(body if isinstance(body, str) else body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return Undecodable(body, exc)


def _encode(obj):
    return json.dumps(obj, ensure_ascii=False)


kombu.serialization.register(SERIALIZER, _encode, _decode, content_type=CONTENT_TYPE,
                             content_encoding="utf-8")


class MalformedEvent(Exception):
    """Not a gridbus CloudEvent; retrying cannot help, so it goes to the dead-letter queue."""


def check_envelope(event) -> dict:
    if isinstance(event, Undecodable):
        raise MalformedEvent(f"event body is not JSON: {event.error}")
    if not isinstance(event, dict):
        raise MalformedEvent(f"event body is {type(event).__name__}, not an object")
    missing = [k for k in REQUIRED if k not in event]
    if missing:
        raise MalformedEvent(f"event lacks {', '.join(missing)}")
    if event["specversion"] != "1.0":
        raise MalformedEvent(f"specversion {event['specversion']!r} is not 1.0")
    return event


def queue_arguments(queue_name: str) -> dict:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DLX,
        "x-dead-letter-routing-key": queue_name,
    }


def declare_subscription(conn: kombu.Connection, queue_name: str, patterns: list[str],
                         arguments: dict | None = None) -> Queue:
    """A durable quorum queue bound to the events exchange with its own dead-letter queue
    (`arguments`: more queue arguments, e.g. a single active consumer)."""
    channel = conn.default_channel
    events_exchange()(channel).declare()
    dlx = Exchange(DLX, type="direct", durable=True, passive=True)  # the administrator's (shared/broker_users.py)
    dlx(channel).declare()
    Queue(f"{queue_name}.dlq", exchange=dlx, routing_key=queue_name, durable=True,
          queue_arguments={"x-queue-type": "quorum"})(channel).declare()
    queue = Queue(queue_name, bindings=[binding(events_exchange(), routing_key=p) for p in patterns],
                  durable=True, queue_arguments={**queue_arguments(queue_name), **(arguments or {})})
    queue(channel).declare()
    return queue


class EventConsumer(Consumer):
    def __init__(self, *patterns: str, **kwargs):
        if not patterns:
            raise ValueError("on_event needs at least one routing pattern")
        self.patterns = list(patterns)
        super().__init__(queue=None, requeue_on_error=True, **kwargs)

    def setup(self):
        name = f"gridbus.{self.container.service_name}.{self.method_name}"
        with tls.amqp_connection(self.container.config["AMQP_URI"]) as conn:
            self.queue = declare_subscription(conn, name, self.patterns)
        # The container accepts only its configured serializers; our envelopes have their own type.
        if SERIALIZER not in self.container.accept:
            self.container.accept.append(SERIALIZER)
        super().setup()

    def handle_message(self, body, message):
        try:
            check_envelope(body)
        except MalformedEvent as exc:
            log.error("dead-lettering a message on %s: %s", self.queue.name, exc)
            message.reject(requeue=False)  # straight to the DLQ
            observability.DEAD_LETTERED.labels(self.queue.name, "malformed").inc()
            return
        publisher = message.properties.get("user_id")
        if not from_owner(body, publisher):
            # Not published by the service that owns the type (the broker vouches for user_id):
            # a forgery or a misrouted message. Nothing is recorded or acted on.
            log.error("dead-lettering event %s on %s: type %s published by %r, not its owner's user",
                      body.get("id"), self.queue.name, body.get("type"), publisher)
            message.reject(requeue=False)
            observability.DEAD_LETTERED.labels(self.queue.name, "impostor").inc()
            return
        super().handle_message(body, message)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is not None:
            log.warning("event %s on %s failed (%s: %s); returned to the queue",
                        message.properties.get("message_id"), self.queue.name,
                        exc_info[0].__name__, exc_info[1])
            # A quorum queue counts earlier deliveries in x-delivery-count; past the limit the
            # broker dead-letters the message instead of delivering it again.
            if int((message.headers or {}).get("x-delivery-count", 0)) + 1 >= DELIVERY_LIMIT:
                observability.DEAD_LETTERED.labels(self.queue.name, "delivery_limit").inc()
        try:
            super().handle_message_processed(message, result, exc_info)
        except (ConnectionError, OSError) as exc:
            # The broker connection died under us: the unacknowledged message comes back on the
            # new connection and the inbox makes it a no-op. Letting this escape would kill the
            # whole nameko container.
            log.warning("could not settle event %s on %s (%s); it will be redelivered",
                        message.properties.get("message_id"), self.queue.name, exc)


def is_transient(exc: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, OperationalError

    from shared.errors import Aborted
    if isinstance(exc, (Aborted, OperationalError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def retry_transient(call, patience: float = TRANSIENT_PATIENCE, sleep=time.sleep):
    """Runs `call()`, retrying transient failures with backoff (0.2 s doubling to 5 s)."""
    deadline = time.monotonic() + patience
    delay = 0.2
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("transient failure (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
            sleep(delay)
            delay = min(delay * 2, 5.0)


def on_event(*patterns: str, **kwargs):
    """Decorates a nameko service method that handles gridbus events (see the module doc)."""
    def decorate(method):
        @functools.wraps(method)
        def handler(self, event):
            with observability.consuming(event, f"{type(self).name}.{method.__name__}"):
                return retry_transient(lambda: method(self, event))
        return EventConsumer.decorator(*patterns, **kwargs)(handler)
    return decorate
