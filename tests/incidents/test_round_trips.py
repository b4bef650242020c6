"""Incidents applies a dispatch decision without a savepoint: counted in process on the real
database, with what the savepoint used to guard still true (a redelivery changes nothing, a
decision that does not apply commits only its inbox row, an early one commits nothing)."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from services.incidents.operations.reactions import apply_dispatch_event
from shared.db import session_scope
from shared.errors import Aborted
from tests.dispatch.test_round_trips import statements
from tests.incidents.conftest import report_request
from tests.incidents.test_events import GRID, OFFICER
from tests.support import metadata


def decision(type_: str, incident_id: str, **data) -> dict:
    return {"id": str(uuid.uuid4()), "type": f"dispatch.task.{type_}", "source": "/gridbus/dispatch",
            "data": {"task_id": str(uuid.uuid4()), "incident_id": incident_id, "department_code": "SW-03",
                     "actor": {"id": "SW-03", "role": "department"}, **data}}


def footprint(incident_id: str, *events: dict) -> tuple:
    """The incident's version and status, its history and events, and the inbox rows of `events`."""
    with session_scope() as s:
        return s.execute(text(
            "SELECT i.version, i.status, (SELECT count(*) FROM incidents.history h WHERE h.incident_id = i.id), "
            "(SELECT count(*) FROM incidents.outbox o WHERE o.subject = 'incidents/' || i.id::text), "
            "(SELECT count(*) FROM incidents.inbox WHERE event_id = ANY(CAST(:e AS uuid[]))) "
            "FROM incidents.incidents i WHERE i.id = :i"), {"i": incident_id, "e": [e["id"] for e in events]}).one()._tuple()


def test_a_decision_is_applied_once_without_a_savepoint_and_its_redelivery_changes_nothing(environment, stub):
    incident = stub.Report(report_request(GRID), metadata=metadata(OFFICER)).incident
    created = decision("created", incident.id, actor={"id": "dispatch", "role": "service"})
    with statements() as sent:
        assert apply_dispatch_event(created) == "dispatch"
    print(f"\nstatements for a decision: {len(sent)}")
    assert not [s for s in sent if "SAVEPOINT" in s.upper()]
    assert len(sent) == 4, sent  # claim and read; update; history; event
    applied = footprint(incident.id, created)
    assert applied[:2] == (2, "dispatched")
    with statements() as again:
        assert apply_dispatch_event(created) == "duplicate"
    assert len(again) == 1 and footprint(incident.id, created) == applied

    resolved = decision("resolved", incident.id, resolution="cleared")
    # Arrived early (resolved before acknowledged): nothing commits, not even the inbox row,
    # so the consumer's retry applies it once the acknowledgement is in.
    with pytest.raises(Aborted):
        apply_dispatch_event(resolved)
    assert footprint(incident.id, created, resolved) == applied
    assert apply_dispatch_event(decision("acknowledged", incident.id)) == "accept"
    assert apply_dispatch_event(resolved) == "resolve"
    stale = decision("acknowledged", incident.id)  # the incident moved past it: dropped, recorded
    done = footprint(incident.id, stale)
    assert done[:3] == (4, "resolved", applied[2] + 2) and done[4] == 0
    assert apply_dispatch_event(stale) == "not applicable"
    assert footprint(incident.id, stale) == (*done[:4], 1)
    assert apply_dispatch_event(stale) == "duplicate"
    # An incident that does not exist, or a malformed id: taken in, nothing else.
    for missing in (decision("acknowledged", str(uuid.uuid4())), decision("acknowledged", "not-a-uuid")):
        assert apply_dispatch_event(missing) == "not applicable"
        assert apply_dispatch_event(missing) == "duplicate"
