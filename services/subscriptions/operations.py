"""What the subscriptions service does: an organisation's subscriptions (a durable quorum queue,
with its own dead-letter queue, into which the delivery puts the events matching its routing
patterns, filtered to its scope and grant) and replay of past events into them from the event
store, filtered the same way.

Who: an organisation manages its own subscriptions with its subscriber token (role subscriber,
member id = the organisation's id); an admin registers organisations within their own district
(services/subscriptions/organisations.py); operators, on the command line, act for any
organisation (the operator_* functions, never reachable through the API)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import kombu
from amqp.exceptions import NotFound as QueueGone

from services import registry
from services.subscriptions import domain, filtering, store
from services.subscriptions.organisations import active_organisation
from shared import auth, tls
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.errors import InvalidArgument, NotFound, PermissionDenied
from shared.events import declare_subscription
from shared.config import EVENTS_EXCHANGE
from shared.outbox import CONTENT_TYPE, envelope, events_exchange
from shared.publisher import ConfirmedPublisher

REPLAY_HEADER = "x-gridbus-replay"
LEGACY = "legacy"  # the owner of subscriptions made before they had owners (migration 0002)


@dataclass
class SubscriptionView:
    organisation: str
    name: str
    queue: str
    dead_letter_queue: str
    patterns: list[str]
    scope: list[str]
    grants: list[str]
    created_by: str
    created_at: datetime


def _view(row) -> SubscriptionView:
    return SubscriptionView(row.organisation, row.name, row.queue, f"{row.queue}.dlq", list(row.patterns),
                            list(row.scope), list(row.grants), row.created_by, row.created_at)


def _owner(caller: Principal) -> str:
    """The organisation a subscriber acts for: its own, and only through its own token."""
    if caller.role != auth.SUBSCRIBER:
        raise PermissionDenied("subscriptions belong to organisations: call with the organisation's subscriber token")
    return caller.member_id


# --- through the API: an organisation's own ------------------------------------------------------

def subscribe(caller: Principal, name: str, patterns: list[str], scope: list[str] | None = None,
              grants: list[str] | None = None) -> SubscriptionView:
    """Creates or updates one of the caller's subscriptions. Scope: unit codes within both the
    organisation's registered scope and the token's (default: the organisation's); grants: kinds of
    personal fields (shared/privacy.py GRANTS) the organisation was granted (default: none)."""
    org_id = _owner(caller)
    with session_scope() as session:
        org = active_organisation(session, org_id)
        scope = filtering.check_scope(scope or org.scope)
        wider = filtering.within(scope, caller.scope)
        if wider:
            raise PermissionDenied(f"scope {', '.join(wider)} is outside your token's scope")
    return _subscribe(org_id, name, patterns, scope, grants or [], caller.member_id)


def list_subscriptions(caller: Principal) -> list[SubscriptionView]:
    org_id = _owner(caller)
    with session_scope() as session:
        active_organisation(session, org_id)
        return [_view(r) for r in store.all_(session, org_id)]


def unsubscribe(caller: Principal, name: str) -> None:
    org_id = _owner(caller)
    with session_scope() as session:
        active_organisation(session, org_id)
    _unsubscribe(org_id, name)


def replay(caller: Principal, name: str, *, source: str | None = None, from_sequence: int | None = None,
           since: datetime | None = None) -> int:
    org_id = _owner(caller)
    with session_scope() as session:
        active_organisation(session, org_id)
    return _replay(org_id, name, caller.member_id, source=source, from_sequence=from_sequence, since=since)


# --- on the command line: operators, for any organisation ----------------------------------------

def operator_subscribe(by: str, organisation: str, name: str, patterns: list[str], scope: list[str] | None = None,
                       grants: list[str] | None = None) -> SubscriptionView:
    with session_scope() as session:
        org = active_organisation(session, domain.check_organisation(organisation))
        scope = filtering.check_scope(scope or org.scope)
    return _subscribe(organisation, name, patterns, scope, grants or [], by)


def operator_list(organisation: str | None = None) -> list[SubscriptionView]:
    with session_scope() as session:
        return [_view(r) for r in store.all_(session, organisation)]


def operator_unsubscribe(organisation: str, name: str) -> None:
    _unsubscribe(domain.check_organisation(organisation), name)


def operator_replay(by: str, organisation: str, name: str, **kw) -> int:
    return _replay(domain.check_organisation(organisation), name, by, **kw)


# --- both ---------------------------------------------------------------------------------------

def _subscribe(org_id: str, name: str, patterns: list[str], scope: list[str], grants: list[str],
               by: str) -> SubscriptionView:
    """The queue exists (and receives events) from now on."""
    name, patterns = domain.check_name(name), domain.check_patterns(patterns)
    grants = filtering.check_grants(grants)
    with session_scope() as session:
        org = active_organisation(session, org_id)
        wider = filtering.within(scope, org.scope)
        if wider:
            raise PermissionDenied(f"scope {', '.join(wider)} is outside organisation {org_id}'s")
        ungranted = sorted(set(grants) - set(org.grants))
        if ungranted:
            raise PermissionDenied(f"organisation {org_id} is not granted {', '.join(ungranted)}")
        before = store.get(session, org_id, name)
        queue = before.queue if before else domain.queue_name(org_id, name)
        # The broker first: declaring is idempotent, so a failure here leaves nothing half-made. The
        # queue is bound to nothing: the delivery puts each event in, filtered (delivery.py).
        with tls.amqp_connection() as conn:
            declared = declare_subscription(conn, queue, [])
            for old in before.patterns if before else ():
                # A queue from before subscriptions were filtered was bound to the exchange directly.
                declared(conn.default_channel).unbind_from(events_exchange(), routing_key=old)
        store.upsert(session, org_id, name, queue, patterns, scope, grants, by)
        return _view(store.get(session, org_id, name))


def _unsubscribe(org_id: str, name: str) -> None:
    """Removes the subscription and its queues, with whatever they still hold. Another
    organisation's subscription is NOT_FOUND: it is not the caller's to know of."""
    with session_scope() as session:
        row = store.delete(session, org_id, domain.check_name(name))
        if row is None:
            raise NotFound(f"no subscription {name}")
        with tls.amqp_connection() as conn:
            channel = conn.default_channel
            channel.queue_delete(row.queue)
            channel.queue_delete(row.queue + ".dlq")


def _replay(org_id: str, name: str, by: str, *, source: str | None = None, from_sequence: int | None = None,
            since: datetime | None = None) -> int:
    """Publishes stored events that match the subscription's patterns, scope and grant into its
    queue, oldest first, filtered as live ones are, marked with the x-gridbus-replay header.
    Returns how many. Events keep their ids, so a subscriber that saw some already drops the repeats."""
    if source:
        source = source.rsplit("/", 1)[-1]  # incidents, /gridbus/incidents or /gridbus/<deployment>/incidents
    if from_sequence is not None and not source:
        raise InvalidArgument("from_sequence counts per source: name the source too")
    if from_sequence is None and since is None:
        raise InvalidArgument("say where to start: from_sequence (with a source) or since")
    domain.check_name(name)
    with session_scope() as session:
        sources = store.event_sources(session, registry.schemas())
        if source and source not in sources:
            # Only services with an event store (an outbox) are sources; console and subscriptions are not.
            raise InvalidArgument(f"unknown source {source!r}; one of {', '.join(sources)}")
        sub = store.get(session, org_id, name)
        if sub is None:
            raise NotFound(f"no subscription {name}")
        org = active_organisation(session, org_id)
        shares = (filtering.Share(frozenset(sub.scope), frozenset(sub.grants)),
                  filtering.Share(frozenset(org.scope), frozenset(org.grants)))
        schemas = [source] if source else sources
        published = 0
        with ConfirmedPublisher(settings().amqp_uri) as publisher:
            for row in store.stored_events(session, schemas, from_sequence=from_sequence, since=since):
                if not any(domain.matches(p, row.type) for p in sub.patterns):
                    continue
                event = filtering.deliverable(envelope(row), *shares)
                if event is not None:
                    # The default exchange routes straight to the subscriber's queue, nowhere else.
                    publisher.send(lambda producer, event=event: publish_envelope(
                        producer, event, sub.queue, {REPLAY_HEADER: 1}))
                    published += 1
            publisher.wait_confirms()
        store.record_replay(session, org_id, name, source, from_sequence, since, by, published)
        return published


def detach_direct_bindings() -> int:
    """Unbinds the queues of subscriptions made before the filtered delivery from the events
    exchange, which routed every matching event to them unfiltered; returns how many such
    subscriptions there are. Idempotent: the delivery runs it whenever it starts."""
    with session_scope() as session:
        rows = store.all_(session, LEGACY)
    with tls.amqp_connection() as conn:
        for row in rows:
            for pattern in row.patterns:
                channel = conn.channel()  # on a broker that refuses a queue that is gone, the channel closes
                try:
                    channel.queue_unbind(row.queue, EVENTS_EXCHANGE, pattern)
                except QueueGone:
                    pass
                finally:
                    if channel.is_open:
                        channel.close()
    return len(rows)


def publish_envelope(producer: kombu.Producer, event: dict, queue: str, headers: dict | None = None) -> None:
    """One (filtered) envelope into one subscriber's queue: persistent, its id as message_id, and as
    user_id the connection's user, which the broker checks: the subscriber sees that gridbus's
    subscriptions service put it there."""
    producer.publish(
        json.dumps(event, ensure_ascii=False).encode(), exchange="", routing_key=queue,
        content_type=CONTENT_TYPE, content_encoding="utf-8", delivery_mode=2, message_id=str(event["id"]),
        user_id=producer.connection.userid,
        headers={"ce_type": event["type"], "ce_source": event["source"], "ce_sequence": event.get("sequence"),
                 **(headers or {})})
