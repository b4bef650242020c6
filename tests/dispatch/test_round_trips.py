"""How many statements dispatch spends on an event, counted in process on the real database, and
that taking an event in fewer of them keeps the inbox's promise: a redelivery changes nothing."""
from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager

from sqlalchemy import event as sa_event
from sqlalchemy import text

from services.dispatch.operations.reactions import on_incident_changed, on_incident_reported
from shared.db import engine, session_scope
from tests.dispatch.test_dispatch import D1_GRID


@contextmanager
def statements():
    """The SQL statements this thread sends while the block runs."""
    sent: list[str] = []
    me = threading.get_ident()

    def count(conn, cursor, statement, *args):
        if threading.get_ident() == me:
            sent.append(statement)
    sa_event.listen(engine(), "before_cursor_execute", count)
    try:
        yield sent
    finally:
        sa_event.remove(engine(), "before_cursor_execute", count)


ROUTING_TABLE_READS = ("FROM dispatch.rules WHERE active ORDER BY id", "FROM dispatch.departments")


def reported(incident_id: str | None = None) -> dict:
    incident_id = incident_id or str(uuid.uuid4())
    return {"id": str(uuid.uuid4()), "type": "incidents.incident.reported", "source": "/gridbus/incidents",
            "data": {"incident_id": incident_id, "category": "0102", "priority": 3, "grid_code": D1_GRID,
                     "lineage": ["330100", D1_GRID[:6], D1_GRID[:9], D1_GRID[:12], D1_GRID]}}


def footprint(incident_id: str, event_id: str) -> dict:
    """Every row an incident's report leaves in dispatch's schema."""
    with session_scope() as s:
        one = lambda sql: s.execute(text(sql), {"i": incident_id, "e": event_id}).scalar_one()  # noqa: E731
        return {
            "inbox": one("SELECT count(*) FROM dispatch.inbox WHERE event_id = :e"),
            "tasks": one("SELECT count(*) FROM dispatch.tasks WHERE incident_id = :i"),
            "history": one("SELECT count(*) FROM dispatch.task_history h JOIN dispatch.tasks t ON t.id = h.task_id "
                           "WHERE t.incident_id = :i"),
            "deadlines": one("SELECT count(*) FROM dispatch.deadlines d JOIN dispatch.tasks t ON t.id = d.task_id "
                             "WHERE t.incident_id = :i"),
            "events": one("SELECT count(*) FROM dispatch.outbox WHERE data->>'incident_id' = :i"),
        }


def test_a_report_is_taken_in_two_statements_and_its_redelivery_changes_nothing(environment, dispatch_config):
    on_incident_reported(reported())  # the routing table loads once per process
    event = reported()
    with statements() as sent:
        assert on_incident_reported(event) == "routed"
    # The routing table is cached per process and reloaded when a NOTIFY says rules or departments
    # changed; another test's change may be heard just now, and that reload is not this event's cost.
    sent = [s for s in sent if not any(table in s for table in ROUTING_TABLE_READS)]
    print(f"\nstatements for a new report: {len(sent)}")
    assert len(sent) == 2, sent  # the claim, task, history and deadlines in one; then its event
    before = footprint(event["data"]["incident_id"], event["id"])
    assert before == {"inbox": 1, "tasks": 1, "history": 1, "deadlines": 2, "events": 1}
    with statements() as again:
        assert on_incident_reported(event) == "duplicate event"
    again = [s for s in again if not any(table in s for table in ROUTING_TABLE_READS)]
    print(f"statements for its redelivery: {len(again)}")
    assert len(again) == 1, again
    assert footprint(event["data"]["incident_id"], event["id"]) == before
    # Another event for the same incident (a replay by hand) is taken in but makes no second task.
    replay = reported(event["data"]["incident_id"])
    assert on_incident_reported(replay) == "task exists"
    assert footprint(event["data"]["incident_id"], event["id"]) == before


def test_a_change_is_claimed_with_the_tasks_lock_and_its_redelivery_changes_nothing(environment, dispatch_config):
    report = reported()
    on_incident_reported(report)
    incident_id = report["data"]["incident_id"]
    closed = {"id": str(uuid.uuid4()), "type": "incidents.incident.closed", "source": "/gridbus/incidents",
              "data": {"incident_id": incident_id, "actor": {"id": "officer-1", "role": "officer"}}}
    with statements() as sent:
        assert on_incident_changed(closed) == "close"
    print(f"\nstatements for a closing: {len(sent)}")
    assert "FOR UPDATE" in sent[0] and "inbox" in sent[0]  # the claim rides on the task's lock
    after = footprint(incident_id, closed["id"])
    assert after["inbox"] == 1 and after["history"] == 2 and after["events"] == 2
    with statements() as again:
        assert on_incident_changed(closed) == "duplicate event"
    assert len(again) == 1 and footprint(incident_id, closed["id"]) == after
    # An incident dispatch has no task for: taken in once, nothing else.
    stray = {**closed, "id": str(uuid.uuid4()), "data": {**closed["data"], "incident_id": str(uuid.uuid4())}}
    assert on_incident_changed(stray) == "no task"
    assert on_incident_changed(stray) == "duplicate event"
    assert footprint(stray["data"]["incident_id"], stray["id"])["inbox"] == 1
