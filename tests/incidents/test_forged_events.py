"""Forged events never move an incident nor reach a watcher: incidents takes `dispatch.task.*`
only from dispatch's broker user, and its Watch feed shows `incidents.incident.*` only from its
own (shared/broker_users.py), on the real broker. (Another service's user cannot publish
dispatch's keys at all: tests/shared/test_broker_identity.py.)"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import kombu
import pytest

from shared import broker_users
from shared.outbox import CONTENT_TYPE, events_exchange
from tests.incidents.conftest import DISTRICTS, GRIDS, report_request, watching
from tests.incidents.test_events import HANDLER_QUEUE, in_inbox, version_of
from tests.support import holds_message, metadata, publish_event, service_uri, token, wait_for

GRID = next(g for g in GRIDS if g.startswith(DISTRICTS[1]))
OFFICER = token("officer", GRID, member_id="officer-forged")


def _envelope(type_: str, data: dict) -> dict:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/gridbus/dispatch", "type": type_,
            "subject": "tasks/x", "time": datetime.now(timezone.utc).isoformat(), "sequence": "1", "data": data}


def _send(uri: str, envelope: dict, *, exchange, routing_key: str, user_id: str | None) -> str:
    with kombu.Connection(uri, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(json.dumps(envelope).encode(), exchange=exchange, routing_key=routing_key,
                                content_type=CONTENT_TYPE, delivery_mode=2, message_id=envelope["id"],
                                **({"user_id": user_id} if user_id else {}))
    return envelope["id"]


def _without_user_id(environment, envelope: dict) -> str:
    """On the bus, by an account the topic permissions let publish it (the vhost's administrator),
    with no user_id."""
    return _send(environment["GRIDBUS_AMQP_URI"], envelope, exchange=events_exchange(),
                 routing_key=envelope["type"], user_id=None)


def _through_the_default_exchange(environment, envelope: dict) -> str:
    """Straight into incidents' queue by the subscriptions user, which may write to the default
    exchange (for replays), with the only user_id the broker lets it set: its own."""
    uri = service_uri("subscriptions")
    return _send(uri, envelope, exchange="", routing_key=HANDLER_QUEUE, user_id=broker_users.credentials(uri)[0])


FORGERIES = {"no-user-id": _without_user_id, "subscriptions-user": _through_the_default_exchange}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_forged_dispatch_decision_is_dead_lettered_and_changes_nothing(environment, stub, incidents_nameko, forge):
    uri = environment["GRIDBUS_AMQP_URI"]
    incident = stub.Report(report_request(GRID), metadata=metadata(OFFICER)).incident
    created = {"task_id": str(uuid.uuid4()), "incident_id": incident.id, "department_code": "SW-03",
               "actor": {"id": "dispatch", "role": "service"}}
    forged = forge(environment, _envelope("dispatch.task.created", created))
    assert wait_for(lambda: holds_message(uri, f"{HANDLER_QUEUE}.dlq", forged))  # handled: dead-lettered
    assert version_of(incident.id) == (1, "reported") and not in_inbox(forged)
    # The same decision from dispatch's user moves it.
    publish_event(uri, "dispatch.task.created", created)
    assert wait_for(lambda: version_of(incident.id) == (2, "dispatched"))


def test_a_watcher_never_sees_a_forged_incident_event(environment, stub, incidents_nameko):
    district = DISTRICTS[1]
    watcher = token("dispatcher", district, member_id="console-forged")
    stream, changes = watching(stub, district, watcher)
    fake = {"incident_id": str(uuid.uuid4()), "lineage": [district, GRID], "grid_code": GRID, "status": "closed",
            "violation_confirmed": True}
    forged = _without_user_id(environment, _envelope("incidents.incident.closed", fake))
    # Confirmed before the real report is made, so the feed has the forgery first: once the real
    # one is seen, the forgery has been dealt with.
    real = stub.Report(report_request(GRID), metadata=metadata(OFFICER)).incident
    wait_for(lambda: any(c.incident.id == real.id for c in changes), 15)
    stream.cancel()
    assert forged not in {c.event_id for c in changes}
    assert fake["incident_id"] not in {c.incident.id for c in changes}
