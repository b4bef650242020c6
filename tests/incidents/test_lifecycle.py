"""The lifecycle through the gRPC API: roles, scope, legal moves, optimistic versions, the
audit trail, queries and Watch."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import grpc
import pytest
import sqlalchemy.exc
from sqlalchemy import text

from gridbus.incidents.v1 import incidents_pb2 as pb
from shared.config import settings
from shared.db import engine, session_scope
from tests.event_contract import assert_payloads_match_protos
from tests.incidents.conftest import DISTRICTS, GRIDS, inside, report_request, watching
from tests.incidents.test_report import call_error
from tests.support import metadata, token, wait_for

GRID = GRIDS[2]
OTHER_GRID = next(g for g in GRIDS if g[:6] != GRID[:6])
OFFICER = token("officer", GRID, member_id="officer-7")
DISPATCHER = token("dispatcher", GRID[:6], member_id="dispatcher-1")
DISPATCHER_2 = token("dispatcher", GRID[:6], member_id="dispatcher-2")
FOREIGN_DISPATCHER = token("dispatcher", OTHER_GRID[:6], member_id="dispatcher-9")
DEPARTMENT = token("department", GRID[:6], member_id="CG-01")


def new_incident(stub, grid=GRID, officer=OFFICER, **kw) -> pb.Incident:
    return stub.Report(report_request(grid, **kw), metadata=metadata(officer)).incident


def act(stub, who, incident, action, **kw) -> pb.Incident:
    return stub.Transition(pb.TransitionRequest(incident_id=incident.id, action=action,
                                                expected_version=incident.version, **kw),
                           metadata=metadata(who))


def test_a_case_goes_the_whole_way_and_every_step_is_in_the_history(stub):
    i = new_incident(stub, category="0601")
    i = act(stub, DISPATCHER, i, pb.ACTION_DISPATCH, department_code="CG-01")
    assert (i.status, i.department_code, i.version) == (pb.STATUS_DISPATCHED, "CG-01", 2)
    i = act(stub, DEPARTMENT, i, pb.ACTION_ACCEPT)
    i = act(stub, DEPARTMENT, i, pb.ACTION_RESOLVE, note="cover replaced")
    i = act(stub, OFFICER, i, pb.ACTION_REOPEN, note="cover is loose")
    assert i.status == pb.STATUS_REOPENED
    i = act(stub, DEPARTMENT, i, pb.ACTION_ACCEPT)
    i = act(stub, DEPARTMENT, i, pb.ACTION_RESOLVE, note="bolted down")
    i = act(stub, OFFICER, i, pb.ACTION_VERIFY)
    i = act(stub, DISPATCHER, i, pb.ACTION_CLOSE)
    assert (i.status, i.version) == (pb.STATUS_CLOSED, 9)
    got = stub.GetIncident(pb.GetIncidentRequest(incident_id=i.id), metadata=metadata(DISPATCHER))
    steps = [(h.version, h.action, h.actor_id) for h in got.history]
    assert steps == [(1, "report", "officer-7"), (2, "dispatch", "dispatcher-1"), (3, "accept", "CG-01"),
                     (4, "resolve", "CG-01"), (5, "reopen", "officer-7"), (6, "accept", "CG-01"),
                     (7, "resolve", "CG-01"), (8, "verify", "officer-7"), (9, "close", "dispatcher-1")]
    assert got.history[4].note == "cover is loose"
    assert got.history[4].from_status == pb.STATUS_RESOLVED and got.history[4].to_status == pb.STATUS_REOPENED


def test_an_illegal_move_is_failed_precondition_naming_the_state(stub):
    i = new_incident(stub)
    err = call_error(act, stub, DEPARTMENT, i, pb.ACTION_RESOLVE)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED  # not dispatched to them: they learn nothing
    err = call_error(act, stub, DISPATCHER, i, pb.ACTION_CLOSE)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "incident that is reported" in err.details()


def test_reject_resubmit_and_notes_that_are_required(stub):
    i = new_incident(stub)
    err = call_error(act, stub, DISPATCHER, i, pb.ACTION_REJECT)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "note" in err.details()
    i = act(stub, DISPATCHER, i, pb.ACTION_REJECT, note="a private courtyard, not public space")
    other_officer = token("officer", GRID, member_id="officer-8")
    err = call_error(act, stub, other_officer, i, pb.ACTION_RESUBMIT)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    i = act(stub, OFFICER, i, pb.ACTION_RESUBMIT, note="it is the pavement")
    assert i.status == pb.STATUS_REPORTED and i.department_code == ""


def test_roles_and_districts_are_checked_on_every_transition(stub):
    i = new_incident(stub)
    for who, action, kw in [(OFFICER, pb.ACTION_DISPATCH, {"department_code": "CG-01"}),
                            (FOREIGN_DISPATCHER, pb.ACTION_DISPATCH, {"department_code": "CG-01"}),
                            (token("department", GRID, member_id="CG-02"), pb.ACTION_ACCEPT, {})]:
        err = call_error(act, stub, who, i, action, **kw)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, (who, action)
    i = act(stub, DISPATCHER, i, pb.ACTION_DISPATCH, department_code="CG-01")
    err = call_error(act, stub, token("department", GRID, member_id="CG-02"), i, pb.ACTION_ACCEPT)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "CG-02" in err.details()


def test_a_stale_version_is_aborted(stub):
    i = new_incident(stub)
    act(stub, DISPATCHER, i, pb.ACTION_DISPATCH, department_code="CG-01")
    err = call_error(act, stub, DISPATCHER_2, i, pb.ACTION_REJECT, note="duplicate")
    assert err.code() == grpc.StatusCode.ABORTED and "version 2" in err.details()
    err = call_error(stub.Transition, pb.TransitionRequest(incident_id=i.id, action=pb.ACTION_REJECT, note="x"),
                     metadata=metadata(DISPATCHER))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "expected_version" in err.details()


def test_two_dispatchers_at_once_one_wins_the_other_is_aborted(stub):
    for _ in range(5):
        i = new_incident(stub)
        results: list = []
        barrier = threading.Barrier(2)

        def go(who, dept):
            barrier.wait()
            try:
                results.append(act(stub, who, i, pb.ACTION_DISPATCH, department_code=dept).department_code)
            except grpc.RpcError as exc:
                results.append(exc.code())

        threads = [threading.Thread(target=go, args=(DISPATCHER, "CG-01")),
                   threading.Thread(target=go, args=(DISPATCHER_2, "SW-02"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(map(str, results)) == sorted(map(str, [grpc.StatusCode.ABORTED, *[r for r in results if isinstance(r, str)]]))
        assert len([r for r in results if isinstance(r, str)]) == 1
        got = stub.GetIncident(pb.GetIncidentRequest(incident_id=i.id), metadata=metadata(DISPATCHER))
        assert got.incident.version == 2 and len(got.history) == 2


def test_the_audit_trail_cannot_be_changed_even_directly(stub):
    """The services' role has no UPDATE or DELETE on it; its owner meets the trigger."""
    i = new_incident(stub)
    owner = engine(settings().owner_database_url)
    for sql in ("UPDATE incidents.history SET note = 'edited' WHERE incident_id = :i",
                "DELETE FROM incidents.history WHERE incident_id = :i"):
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="permission denied for table history"):
            with session_scope() as s:
                s.execute(text(sql), {"i": i.id})
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="incidents.history is append-only"):
            with session_scope(owner) as s:
                s.execute(text(sql), {"i": i.id})


def test_reading_is_limited_to_your_grids(stub):
    i = new_incident(stub)
    err = call_error(stub.GetIncident, pb.GetIncidentRequest(incident_id=i.id), metadata=metadata(FOREIGN_DISPATCHER))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(stub.GetIncident, pb.GetIncidentRequest(incident_id="nope"), metadata=metadata(DISPATCHER))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = call_error(stub.ListIncidents, pb.ListIncidentsRequest(grid_code=OTHER_GRID), metadata=metadata(DISPATCHER))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(stub.ListIncidents, pb.ListIncidentsRequest(grid_code="330199"), metadata=metadata(DISPATCHER))
    assert err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
    # Listing without a grid lists only what the caller may see.
    listed = stub.ListIncidents(pb.ListIncidentsRequest(page_size=200), metadata=metadata(FOREIGN_DISPATCHER))
    assert all(x.lineage[1] == OTHER_GRID[:6] for x in listed.incidents)


def test_list_filters(stub):
    grid = GRIDS[3]
    officer = token("officer", grid, member_id="officer-list")
    dispatcher = token("dispatcher", grid[:9])
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    a = new_incident(stub, grid, officer, category="0501", at=inside(grid, 0.2, 0.2))
    b = new_incident(stub, grid, officer, category="0301", at=inside(grid, 0.8, 0.8))
    act(stub, dispatcher, b, pb.ACTION_DISPATCH, department_code="CG-01")

    def ids(**kw):
        req = pb.ListIncidentsRequest(grid_code=grid, page_size=200, **kw)
        req.reported_from.FromDatetime(start)
        return {x.id for x in stub.ListIncidents(req, metadata=metadata(dispatcher)).incidents}

    assert ids() == {a.id, b.id}
    assert ids(statuses=[pb.STATUS_DISPATCHED]) == {b.id}
    assert ids(category_code="05") == {a.id}
    w, s = inside(grid, 0.0, 0.0)
    e, n = inside(grid, 0.5, 0.5)
    assert ids(bbox=pb.BoundingBox(min_lon=w, min_lat=s, max_lon=e, max_lat=n)) == {a.id}
    req = pb.ListIncidentsRequest(grid_code=grid)
    req.reported_to.FromDatetime(start)
    assert {x.id for x in stub.ListIncidents(req, metadata=metadata(dispatcher)).incidents}.isdisjoint({a.id, b.id})
    err = call_error(stub.ListIncidents, pb.ListIncidentsRequest(grid_code=grid, page_size=500), metadata=metadata(dispatcher))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_pages_stay_stable_while_new_incidents_arrive(stub):
    grid = GRIDS[4]
    officer = token("officer", grid, member_id="officer-pages")
    dispatcher = token("dispatcher", grid[:6])
    since = datetime.now(timezone.utc) - timedelta(milliseconds=200)  # only this test's incidents

    def page_of(token_=""):
        req = pb.ListIncidentsRequest(grid_code=grid, page_size=3, page_token=token_)
        req.reported_from.FromDatetime(since)
        return stub.ListIncidents(req, metadata=metadata(dispatcher))

    made = [new_incident(stub, grid, officer, title=f"p{n}").id for n in range(7)]
    page = page_of()
    seen = [x.id for x in page.incidents]
    newer = [new_incident(stub, grid, officer, title=f"new{n}").id for n in range(3)]
    while page.next_page_token:
        page = page_of(page.next_page_token)
        seen += [x.id for x in page.incidents]
    assert seen == list(reversed(made))  # newest first, no repeats, and nothing new slipped into later pages
    assert not set(newer) & set(seen)
    err = call_error(stub.ListIncidents, pb.ListIncidentsRequest(grid_code=grid, page_token="garbage"),
                     metadata=metadata(dispatcher))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_watch_streams_changes_in_a_subtree(stub, incidents_nameko):
    district = DISTRICTS[0]
    watcher = token("dispatcher", district, member_id="console-1")
    grid_in = next(g for g in GRIDS if g.startswith(district))
    grid_out = next(g for g in GRIDS if not g.startswith(district))
    stream, changes = watching(stub, district, watcher)
    inside_incident = new_incident(stub, grid_in, token("officer", grid_in, member_id="o-in"))
    new_incident(stub, grid_out, token("officer", grid_out, member_id="o-out"))
    act(stub, watcher, inside_incident, pb.ACTION_REJECT, note="test")
    # Only this incident's changes are compared: an earlier test's change in the same district may
    # still be on its way when the stream opens, and the watcher rightly sees it.
    def ours():
        return [(c.type, c.incident.id) for c in changes if c.incident.id == inside_incident.id]
    wait_for(lambda: len(ours()) >= 2, 15)
    stream.cancel()
    assert ours()[:2] == [
        ("incidents.incident.reported", inside_incident.id), ("incidents.incident.rejected", inside_incident.id)]
    assert all(c.incident.grid_code.startswith(district) for c in changes)
    err = call_error(lambda: list(stub.Watch(pb.WatchRequest(grid_code=grid_out), metadata=metadata(watcher))))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_every_event_incidents_stored_matches_its_events_proto(stub):
    """The outbox is the event store: each event as it leaves. Whatever this run has made so far
    (every action, after the tests above), each payload is what events.proto says it is."""
    i = new_incident(stub)
    act(stub, DISPATCHER, i, pb.ACTION_DISPATCH, department_code="CG-01")
    with session_scope() as s:
        events = s.execute(text("SELECT type, data FROM incidents.outbox ORDER BY id")).mappings().all()
    assert {"incidents.incident.reported", "incidents.incident.dispatched"} <= {e["type"] for e in events}
    assert_payloads_match_protos(events)
