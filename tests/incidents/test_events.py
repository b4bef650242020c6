"""The event contract on the real broker: envelopes an outside subscriber can rely on, dispatch's
decisions applied once, poison messages dead-lettered, and nothing lost when the relay dies."""
from __future__ import annotations

import json
import re
import time
import uuid

import kombu
import pytest
from sqlalchemy import text

from gridbus.incidents.v1 import events_pb2
from gridbus.incidents.v1 import incidents_pb2 as pb
from shared.db import session_scope
from shared.health import check_nameko
from tests.event_contract import assert_payloads_match_protos
from tests.incidents.conftest import GRIDS, report_request
from tests.support import EventTap, metadata, publish_event, queue_depth, token, wait_healthy

GRID = GRIDS[5]
OFFICER = token("officer", GRID, member_id="officer-events")
DISPATCHER = token("dispatcher", GRID[:6], member_id="dispatcher-events")
HANDLER_QUEUE = "gridbus.incidents.apply_dispatch_event"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def version_of(incident_id: str) -> tuple[int, str]:
    with session_scope() as s:
        row = s.execute(text("SELECT version, status FROM incidents.incidents WHERE id = :i"), {"i": incident_id}).first()
    return row.version, row.status


def test_an_outside_subscriber_with_plain_kombu_gets_valid_envelopes(environment, stub, incidents_nameko):
    """What a government system would do: its own durable queue, plain kombu, the README's contract."""
    uri = environment["GRIDBUS_AMQP_URI"]
    exchange = kombu.Exchange("gridbus.events", type="topic", durable=True)
    queue = kombu.Queue(f"outside-system-{uuid.uuid4().hex[:6]}", exchange, routing_key="incidents.incident.#",
                        durable=True)
    received = []
    with kombu.Connection(uri) as conn:
        queue(conn.default_channel).declare()
        incident = stub.Report(report_request(GRID), metadata=metadata(OFFICER)).incident
        stub.Transition(pb.TransitionRequest(incident_id=incident.id, action=pb.ACTION_DISPATCH,
                                             expected_version=1, department_code="CG-01"),
                        metadata=metadata(DISPATCHER))

        def on_message(message):
            received.append((message.delivery_info["routing_key"], message.content_type,
                             message.properties.get("message_id"), json.loads(message.body)))
            message.ack()

        with kombu.Consumer(conn, queues=[queue], on_message=on_message):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len([r for r in received if r[3]["data"]["incident_id"] == incident.id]) < 2:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
        queue(conn.default_channel).delete()

    mine = [r for r in received if r[3]["data"]["incident_id"] == incident.id]
    assert [r[0] for r in mine] == ["incidents.incident.reported", "incidents.incident.dispatched"]
    proto_fields = {f.name for f in events_pb2.IncidentEventData.DESCRIPTOR.fields}
    sequences = []
    for routing_key, content_type, message_id, e in mine:
        assert content_type == "application/cloudevents+json"
        assert e["specversion"] == "1.0" and e["type"] == routing_key and e["id"] == message_id
        assert str(uuid.UUID(e["id"])) == e["id"]
        assert e["source"] == "/gridbus/incidents" and e["subject"] == f"incidents/{incident.id}"
        assert e["datacontenttype"] == "application/json" and RFC3339.fullmatch(e["time"])
        assert set(e["data"]) == proto_fields  # the payload is exactly what events.proto documents
        assert e["data"]["lineage"][-1] == GRID and e["data"]["version"] == int(e["subjectsequence"])
        sequences.append(int(e["sequence"]))
    assert [int(r[3]["subjectsequence"]) for r in mine] == [1, 2]
    assert sequences == sorted(sequences) and len(set(sequences)) == 2
    assert mine[1][3]["data"]["previous_status"] == "reported" and mine[1][3]["data"]["department_code"] == "CG-01"
    assert_payloads_match_protos(r[3] for r in mine)


def test_dispatch_decisions_move_the_incident_once_even_when_delivered_twice(environment, stub, incidents_nameko):
    uri = environment["GRIDBUS_AMQP_URI"]
    incident = stub.Report(report_request(GRID), metadata=metadata(OFFICER)).incident
    created = {"task_id": str(uuid.uuid4()), "incident_id": incident.id, "department_code": "SW-03",
               "actor": {"id": "dispatch", "role": "service"}}
    event_id = publish_event(uri, "dispatch.task.created", created)
    assert wait_for(lambda: version_of(incident.id) == (2, "dispatched"))
    publish_event(uri, "dispatch.task.created", created, event_id=event_id)  # the broker redelivers
    ack = publish_event(uri, "dispatch.task.acknowledged",
                        {**created, "actor": {"id": "SW-03", "role": "department"}})
    assert wait_for(lambda: version_of(incident.id) == (3, "in_progress"))
    time.sleep(0.5)
    assert version_of(incident.id) == (3, "in_progress")
    with session_scope() as s:
        consumed = s.execute(text("SELECT count(*) FROM incidents.inbox WHERE event_id IN (:a, :b)"),
                             {"a": event_id, "b": ack}).scalar()
        actors = s.execute(text("SELECT actor_id FROM incidents.history WHERE incident_id = :i ORDER BY version"),
                           {"i": incident.id}).scalars().all()
    assert consumed == 2 and actors == ["officer-events", "dispatch", "SW-03"]
    # A manual-queue task (no department yet) leaves the incident reported.
    other = stub.Report(report_request(GRID), metadata=metadata(OFFICER)).incident
    publish_event(uri, "dispatch.task.created", {**created, "incident_id": other.id, "department_code": None})
    time.sleep(1.0)
    assert version_of(other.id) == (1, "reported")


def test_a_decision_that_overtakes_an_earlier_one_waits_for_it(environment, stub, incidents_nameko):
    """Consumers run concurrently (and on several replicas), so a task's `resolved` can be taken
    before its `acknowledged`: it waits in place, and the incident still goes
    dispatched -> in_progress -> resolved. A late decision is dropped, not retried."""
    uri = environment["GRIDBUS_AMQP_URI"]
    incident = stub.Report(report_request(GRID), metadata=metadata(OFFICER)).incident
    task = {"task_id": str(uuid.uuid4()), "incident_id": incident.id, "department_code": "SW-03",
            "actor": {"id": "dispatch", "role": "service"}}
    publish_event(uri, "dispatch.task.created", task)
    assert wait_for(lambda: version_of(incident.id) == (2, "dispatched"))
    department = {**task, "actor": {"id": "SW-03", "role": "department"}}
    publish_event(uri, "dispatch.task.resolved", {**department, "resolution": "cleared"})
    time.sleep(1.5)
    assert version_of(incident.id) == (2, "dispatched")  # waiting, not dropped
    publish_event(uri, "dispatch.task.acknowledged", department)
    assert wait_for(lambda: version_of(incident.id) == (4, "resolved"), timeout=30)
    with session_scope() as s:
        actions = s.execute(text("SELECT action FROM incidents.history WHERE incident_id = :i ORDER BY version"),
                            {"i": incident.id}).scalars().all()
    assert actions == ["report", "dispatch", "accept", "resolve"]
    publish_event(uri, "dispatch.task.acknowledged", department)  # late: the incident moved past it
    assert wait_for(lambda: queue_depth(uri, HANDLER_QUEUE) == 0)
    time.sleep(0.5)
    assert version_of(incident.id) == (4, "resolved")


def test_poison_messages_end_in_the_dead_letter_queue(environment, incidents_nameko):
    uri = environment["GRIDBUS_AMQP_URI"]
    before = queue_depth(uri, HANDLER_QUEUE + ".dlq")
    publish_event(uri, "dispatch.task.acknowledged", {}, body=b"{not json")
    # Well-formed but unusable: the handler fails on every delivery until the limit.
    publish_event(uri, "dispatch.task.acknowledged", {"no_incident_id": True})
    assert wait_for(lambda: queue_depth(uri, HANDLER_QUEUE + ".dlq") >= before + 2, timeout=30)
    assert "returned to the queue" in incidents_nameko.log()


def test_events_survive_a_relay_killed_between_publish_and_mark(environment, stub, incidents_nameko):
    """The nameko process (which runs the relay) dies right after the broker confirmed an event
    and before the outbox row is marked: restarted, it publishes it again with the same id."""
    uri = environment["GRIDBUS_AMQP_URI"]
    tap = EventTap(uri, "incidents.incident.reported")
    try:
        incidents_nameko.stop()
        incident = stub.Report(report_request(GRID), metadata=metadata(OFFICER)).incident
        incidents_nameko.start({"GRIDBUS_FAILPOINT": "relay.after_publish"})
        assert incidents_nameko.popen.wait(60) == 137
        with session_scope() as s:
            assert s.execute(text("SELECT published_at FROM incidents.outbox WHERE data->>'incident_id' = :i"),
                             {"i": incident.id}).scalar() is None
        incidents_nameko.start()
        wait_healthy(incidents_nameko, lambda: check_nameko(uri, "incidents", timeout=2), 60)
        events = tap.drain(lambda ev: sum(e["data"]["incident_id"] == incident.id for e in ev) >= 2, timeout=20)
    finally:
        tap.close()
    mine = [e for e in events if e["data"]["incident_id"] == incident.id]
    assert len(mine) == 2 and len({e["id"] for e in mine}) == 1  # at least once, one id: consumers dedupe
    assert_payloads_match_protos(mine)

    def marked_published():
        with session_scope() as s:
            return s.execute(text("SELECT published_at FROM incidents.outbox WHERE data->>'incident_id' = :i"),
                             {"i": incident.id}).scalar() is not None

    # The relay marks the row after the broker's confirm, so the event can reach the tap first.
    assert wait_for(marked_published)


@pytest.mark.parametrize("routing_key", ["dispatch.task.escalated"])
def test_events_that_change_nothing_are_acknowledged(environment, stub, incidents_nameko, routing_key):
    uri = environment["GRIDBUS_AMQP_URI"]
    incident = stub.Report(report_request(GRID), metadata=metadata(OFFICER)).incident
    publish_event(uri, routing_key, {"incident_id": incident.id, "level": "street"})
    assert wait_for(lambda: queue_depth(uri, HANDLER_QUEUE) == 0)
    assert version_of(incident.id) == (1, "reported")
