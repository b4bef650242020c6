"""A forged `incidents.incident.closed` (a confirmed violation: it would put a subject on a list)
never reaches credit's handler: credit accepts the type only from the incidents service's broker
user (shared/broker_users.py), so a forgery changes nothing and lands in the handler's
dead-letter queue, on the real broker."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import kombu
import pytest
from sqlalchemy import text

from gridbus.credit.v1 import credit_pb2 as pb
from shared import broker_users
from shared.db import session_scope
from shared.outbox import CONTENT_TYPE, events_exchange
from tests.credit.test_credit import ADMIN, DEPT, GRID, HANDLER_QUEUE, enterprise
from tests.credit.test_domain import REAL_USCC
from tests.support import holds_message, publish_event, service_uri, wait_for

DEAD_LETTERS = f"{HANDLER_QUEUE}.dlq"


def _closed(incident_id: str, event_id: str) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": "/gridbus/incidents", "type": "incidents.incident.closed",
            "subject": f"incidents/{incident_id}", "time": datetime.now(timezone.utc).isoformat(),
            "datacontenttype": "application/json", "sequence": "1",
            "data": {"incident_id": incident_id, "category": "0503", "priority": 3, "grid_code": GRID,
                     "subject": {"type": "enterprise", "ref": REAL_USCC[1]}, "violation_confirmed": True,
                     "actor": {"id": "dispatcher-x", "role": "dispatcher"}}}


def _into_credits_queue(service: str, envelope: dict) -> None:
    """The subscriptions user may write to the default exchange (it replays into subscribers'
    queues), which reaches any queue by name: it puts the forgery straight into credit's queue,
    with its own user_id, the only one the broker lets it set."""
    uri = service_uri(service)
    with kombu.Connection(uri, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(json.dumps(envelope).encode(), exchange="", routing_key=HANDLER_QUEUE,
                                content_type=CONTENT_TYPE, delivery_mode=2, message_id=envelope["id"],
                                user_id=broker_users.credentials(uri)[0])


def _by_the_administrator_without_user_id(envelope: dict) -> None:
    """Any other account (here the vhost's administrator) publishing on the bus without a user_id."""
    import os
    with kombu.Connection(os.environ["GRIDBUS_AMQP_URI"], transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(json.dumps(envelope).encode(), exchange=events_exchange(),
                                routing_key=envelope["type"], content_type=CONTENT_TYPE, delivery_mode=2,
                                message_id=envelope["id"])


FORGERS = {"subscriptions-into-the-queue": lambda e: _into_credits_queue("subscriptions", e),
           "no-user-id-on-the-bus": _by_the_administrator_without_user_id}


@pytest.mark.parametrize("forge", FORGERS.values(), ids=FORGERS.keys())
def test_a_forged_closure_changes_nothing_and_is_dead_lettered(environment, credit, credit_nameko, forge):
    subject = enterprise(credit, REAL_USCC[1], "Honest Trading Co.")
    incident_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    forge(_closed(incident_id, event_id))
    assert wait_for(lambda: holds_message(environment["GRIDBUS_AMQP_URI"], DEAD_LETTERS, event_id))
    # Dead-lettered means handled: credit took nothing in, not even its inbox row.
    records = credit.ListRecords(pb.ListRecordsRequest(subject_id=subject.id), metadata=DEPT).records
    assert not [r for r in records if r.incident_id == incident_id]
    assert not [u for u in credit.ListUnmatched(pb.ListUnmatchedRequest(), metadata=ADMIN).items
                if u.event_id == event_id]
    with session_scope() as s:
        assert s.execute(text("SELECT 1 FROM credit.inbox WHERE event_id = :id"), {"id": event_id}).first() is None


def test_the_same_closure_from_the_incidents_user_is_taken_in(environment, credit, credit_nameko):
    """The control: the owner's user publishing the same event makes the record."""
    subject = enterprise(credit, REAL_USCC[1], "Honest Trading Co.")
    incident_id = str(uuid.uuid4())
    publish_event(environment["GRIDBUS_AMQP_URI"], "incidents.incident.closed", _closed(incident_id, "x")["data"])
    assert wait_for(lambda: [r for r in credit.ListRecords(pb.ListRecordsRequest(subject_id=subject.id),
                                                           metadata=DEPT).records if r.incident_id == incident_id])
