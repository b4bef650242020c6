"""What the subscriptions service does: register an outside system's subscription (a durable
quorum queue bound to its routing patterns, with its own dead-letter queue) and replay past
events into it from the event store, in order."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import kombu

from services import registry
from services.subscriptions import domain, store
from shared import auth
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.errors import InvalidArgument, NotFound
from shared.events import declare_subscription
from shared.outbox import events_exchange, publish_row
from shared.publisher import ConfirmedPublisher

REPLAY_HEADER = "x-gridbus-replay"


@dataclass
class SubscriptionView:
    name: str
    queue: str
    dead_letter_queue: str
    patterns: list[str]
    created_by: str
    created_at: datetime


def _view(row) -> SubscriptionView:
    q = domain.queue_name(row.name)
    return SubscriptionView(row.name, q, f"{q}.dlq", list(row.patterns), row.created_by, row.created_at)


def _may_manage(caller: Principal) -> None:
    auth.require_role(caller, auth.ADMIN, auth.SERVICE)


def subscribe(caller: Principal, name: str, patterns: list[str]) -> SubscriptionView:
    """Creates or updates a subscription; the queue exists (and keeps events) from now on."""
    _may_manage(caller)
    name, patterns = domain.check_name(name), domain.check_patterns(patterns)
    queue = domain.queue_name(name)
    with session_scope() as session:
        before = store.get(session, name)
        # The broker first: declaring is idempotent, so a failure here leaves nothing half-made.
        with kombu.Connection(settings().amqp_uri) as conn:
            declared = declare_subscription(conn, queue, patterns)
            for old in set(before.patterns if before else ()) - set(patterns):
                declared(conn.default_channel).unbind_from(events_exchange(), routing_key=old)
        store.upsert(session, name, patterns, caller.member_id)
        return _view(store.get(session, name))


def list_subscriptions(caller: Principal) -> list[SubscriptionView]:
    _may_manage(caller)
    with session_scope() as session:
        return [_view(r) for r in store.all_(session)]


def unsubscribe(caller: Principal, name: str) -> None:
    """Removes the subscription and its queues, with whatever they still hold."""
    _may_manage(caller)
    with session_scope() as session:
        if not store.delete(session, domain.check_name(name)):
            raise NotFound(f"no subscription {name}")
        with kombu.Connection(settings().amqp_uri) as conn:
            channel = conn.default_channel
            channel.queue_delete(domain.queue_name(name))
            channel.queue_delete(domain.queue_name(name) + ".dlq")


def replay(caller: Principal, name: str, *, source: str | None = None, from_sequence: int | None = None,
           since: datetime | None = None) -> int:
    """Publishes stored events that match the subscription's patterns into its queue, oldest
    first, marked with the x-gridbus-replay header. Returns how many. Events keep their ids,
    so a subscriber that saw some of them already drops the repeats."""
    _may_manage(caller)
    if source:
        source = source.rsplit("/", 1)[-1]  # incidents, /gridbus/incidents or /gridbus/<deployment>/incidents
    if from_sequence is not None and not source:
        raise InvalidArgument("from_sequence counts per source: name the source too")
    if from_sequence is None and since is None:
        raise InvalidArgument("say where to start: from_sequence (with a source) or since")
    queue = domain.queue_name(domain.check_name(name))
    with session_scope() as session:
        sources = store.event_sources(session, registry.schemas())
        if source and source not in sources:
            # Only services with an event store (an outbox) are sources; console and subscriptions are not.
            raise InvalidArgument(f"unknown source {source!r}; one of {', '.join(sources)}")
        sub = store.get(session, name)
        if sub is None:
            raise NotFound(f"no subscription {name}")
        schemas = [source] if source else sources
        published = 0
        with ConfirmedPublisher(settings().amqp_uri) as publisher:
            for row in store.stored_events(session, schemas, from_sequence=from_sequence, since=since):
                if any(domain.matches(p, row.type) for p in sub.patterns):
                    # The default exchange routes straight to the subscriber's queue, nowhere else.
                    publisher.send(lambda producer, row=row: publish_row(
                        producer, row, exchange="", routing_key=queue, headers={REPLAY_HEADER: 1}))
                    published += 1
            publisher.wait_confirms()
        store.record_replay(session, name, source, from_sequence, since, caller.member_id, published)
        return published
