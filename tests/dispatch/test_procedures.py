"""The side procedures on the real servers: the task's (extension, return: dispatch) and the
case's (void, park, supervise: incidents), each asked for by one role with a reason and decided
by another, with the deadline clock paused in working time while a request waits or the case
is parked, across a weekend on the working-time calendar."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import grpc
import pytest
from sqlalchemy import text

from gridbus.dispatch.v1 import dispatch_pb2 as pb
from gridbus.incidents.v1 import incidents_pb2 as ipb
from services.dispatch.operations.changes import calendar
from shared.db import session_scope
from tests.dispatch.test_dispatch import (ADMIN, D1_GRID, count, department, dispatcher, incident_status, officer,
                                          task_for)
from tests.event_contract import assert_payloads_match_protos
from tests.incidents.conftest import report_request
from tests.incidents.test_report import call_error
from tests.support import EventTap, metadata, token, wait_for

SANITATION = "CG-SANITATION"  # category 01: 30 / 240 working minutes
LEAD = metadata(token("admin", "330100", member_id="centre-head"))  # the command centre's management decides


def get(dispatch_stub, task_id):
    return dispatch_stub.GetTask(pb.GetTaskRequest(task_id=task_id), metadata=ADMIN)


def acknowledged_case(stub, dispatch_stub, category="0102"):
    incident = stub.Report(report_request(D1_GRID, category=category), metadata=officer(D1_GRID)).incident
    task = task_for(dispatch_stub, incident.id)
    task = dispatch_stub.Acknowledge(pb.AcknowledgeRequest(task_id=task.id, expected_version=task.version),
                                     metadata=department(SANITATION))
    return incident_status(stub, incident.id, ipb.STATUS_IN_PROGRESS), task


def open_deadlines(task_id, kind):
    return count("SELECT count(*) FROM dispatch.deadlines WHERE task_id = :t AND kind = :k "
                 "AND fired_at IS NULL AND cancelled_at IS NULL", t=task_id, k=kind)


def friday_before_last_weekend(now: datetime) -> datetime:
    """16:00 on the Friday before the latest Saturday that is over: a pause from then to now
    spans a whole weekend (and the nights), whatever day the test runs."""
    zone = ZoneInfo(calendar().timezone)
    day = now.astimezone(zone).date() - timedelta(days=1)
    while day.weekday() != 5:
        day -= timedelta(days=1)
    return datetime.combine(day - timedelta(days=1), time(16, 0), zone).astimezone(timezone.utc)


def test_an_extension_pauses_the_clock_across_a_weekend_and_moves_the_due_by_the_granted_working_time(
        environment, stub, dispatch_stub, dispatch_nameko):
    incident, task = acknowledged_case(stub, dispatch_stub)
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "dispatch.task.#")
    try:
        asked = dispatch_stub.RequestProcedure(pb.ProcedureRequest(
            task_id=task.id, procedure="extension", reason="the compactor is in repair", minutes=120,
            expected_version=task.version), metadata=department(SANITATION))
        assert (asked.pending, asked.pending_minutes, asked.clock_paused, list(asked.holds)) == \
            ("extension", 120, True, ["extension"])
        assert open_deadlines(task.id, "resolve") == 0 and open_deadlines(task.id, "acknowledge") == 0
        # A second request waits for the first to be decided; the asker cannot decide.
        err = call_error(dispatch_stub.RequestProcedure, pb.ProcedureRequest(
            task_id=task.id, procedure="return", reason="not ours", expected_version=asked.version),
            metadata=department(SANITATION))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "extension request is waiting" in err.details()
        err = call_error(dispatch_stub.DecideProcedure, pb.ProcedureDecision(
            task_id=task.id, procedure="extension", approve=True, reason="ok", expected_version=asked.version),
            metadata=department(SANITATION))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        err = call_error(dispatch_stub.DecideProcedure, pb.ProcedureDecision(
            task_id=task.id, procedure="extension", approve=True, reason="ok", expected_version=asked.version),
            metadata=dispatcher("330103"))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        err = call_error(dispatch_stub.DecideProcedure, pb.ProcedureDecision(
            task_id=task.id, procedure="extension", approve=True, reason="ok", granted_minutes=121,
            expected_version=asked.version), metadata=dispatcher("330102"))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT

        # The request was made on a Friday afternoon (the clock stopped then) with four working
        # hours left; the decision comes days later.
        paused_at = friday_before_last_weekend(datetime.now(timezone.utc))
        due = calendar().add(paused_at, timedelta(hours=4))
        with session_scope() as s:
            s.execute(text("UPDATE dispatch.tasks SET paused_at = :p, resolve_due_at = :d WHERE id = :t"),
                      {"p": paused_at, "d": due, "t": task.id})
        before = datetime.now(timezone.utc)
        decided = dispatch_stub.DecideProcedure(pb.ProcedureDecision(
            task_id=task.id, procedure="extension", approve=True, reason="granted: one working hour",
            granted_minutes=60, expected_version=asked.version), metadata=dispatcher("330102"))
        after = datetime.now(timezone.utc)
        tap.drain(lambda ev: any(e["type"] == "dispatch.task.extended" and e["data"]["task_id"] == task.id
                                 for e in ev), timeout=20)
    finally:
        tap.close()
    cal = calendar()
    assert (decided.pending, decided.clock_paused, decided.extended_minutes) == ("", False, 60)
    # The pause counted working time only: not the weekend, not the nights.
    paused = timedelta(minutes=decided.paused_minutes)
    assert cal.between(paused_at, before) - timedelta(minutes=1) <= paused <= cal.between(paused_at, after) + \
        timedelta(minutes=1)
    assert paused < (before - paused_at) - timedelta(days=2)
    # Moved by the working time paused, then by the hour granted, on the calendar.
    new_due = decided.resolve_due_at.ToDatetime(tzinfo=timezone.utc)
    lowest = cal.add(cal.add(due, cal.between(paused_at, before)), timedelta(hours=1))
    highest = cal.add(cal.add(due, cal.between(paused_at, after)), timedelta(hours=1))
    assert lowest - timedelta(minutes=1) <= new_due <= highest + timedelta(minutes=1)
    assert cal.between(due, new_due) >= timedelta(hours=1)
    assert count("SELECT count(*) FROM dispatch.deadlines WHERE task_id = :t AND kind = 'resolve' AND due_at = :d "
                 "AND fired_at IS NULL AND cancelled_at IS NULL", t=task.id, d=new_due) == 1
    history = get(dispatch_stub, task.id).history
    assert [h.action for h in history][-4:] == ["request extension", "pause", "resume", "approve extension"]
    assert "of working time paused since" in history[-2].note and history[-1].note == "granted: one working hour"
    assert history[-1].actor_id == "dispatcher-330102"
    # The incident is where it was: the extension is the task's.
    assert stub.GetIncident(ipb.GetIncidentRequest(incident_id=incident.id),
                            metadata=ADMIN).incident.status == ipb.STATUS_IN_PROGRESS


def test_a_refused_extension_lets_the_clock_run_again_unmoved(stub, dispatch_stub, dispatch_nameko):
    _, task = acknowledged_case(stub, dispatch_stub)
    err = call_error(dispatch_stub.RequestProcedure, pb.ProcedureRequest(
        task_id=task.id, procedure="extension", reason="", minutes=60, expected_version=task.version),
        metadata=department(SANITATION))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in err.details()
    err = call_error(dispatch_stub.RequestProcedure, pb.ProcedureRequest(
        task_id=task.id, procedure="postpone", reason="x", expected_version=task.version),
        metadata=department(SANITATION))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    asked = dispatch_stub.RequestProcedure(pb.ProcedureRequest(
        task_id=task.id, procedure="extension", reason="rain", minutes=60, expected_version=task.version),
        metadata=department(SANITATION))
    refused = dispatch_stub.DecideProcedure(pb.ProcedureDecision(
        task_id=task.id, procedure="extension", approve=False, reason="rain stops at noon",
        expected_version=asked.version), metadata=dispatcher("330102"))
    assert (refused.pending, refused.clock_paused, refused.extended_minutes) == ("", False, 0)
    # Paused for a moment at most: the due moved by the working time it stood still, no more.
    moved = calendar().between(task.resolve_due_at.ToDatetime(tzinfo=timezone.utc),
                               refused.resolve_due_at.ToDatetime(tzinfo=timezone.utc))
    assert moved <= timedelta(minutes=refused.paused_minutes + 1)
    assert open_deadlines(task.id, "resolve") == 1
    err = call_error(dispatch_stub.DecideProcedure, pb.ProcedureDecision(
        task_id=task.id, procedure="extension", approve=True, reason="again", expected_version=refused.version),
        metadata=dispatcher("330102"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "no extension request" in err.details()


def test_an_approved_return_goes_back_for_rerouting_and_the_routing_log_records_it(stub, dispatch_stub,
                                                                                   dispatch_nameko):
    incident, task = acknowledged_case(stub, dispatch_stub)
    asked = dispatch_stub.RequestProcedure(pb.ProcedureRequest(
        task_id=task.id, procedure="return", reason="the bin belongs to the market, not the street",
        expected_version=task.version), metadata=department(SANITATION))
    returned = dispatch_stub.DecideProcedure(pb.ProcedureDecision(
        task_id=task.id, procedure="return", approve=True, reason="agreed: the market's",
        expected_version=asked.version), metadata=dispatcher("330102"))
    assert (returned.status, returned.department_code, returned.returned, returned.clock_paused) == \
        ("queued", "", 1, False)
    back = incident_status(stub, incident.id, ipb.STATUS_REPORTED)
    assert back.department_code == ""
    history = stub.GetIncident(ipb.GetIncidentRequest(incident_id=incident.id), metadata=ADMIN).history
    assert history[-1].action == "return" and history[-1].note == "agreed: the market's"
    assert open_deadlines(task.id, "assign") == 1
    log = get(dispatch_stub, task.id).history
    assert [(h.action, h.department_code) for h in log][-1] == ("approve return", "")
    # Rerouted by hand from the manual queue: the incident follows.
    dispatch_stub.Assign(pb.AssignRequest(task_id=task.id, department_code="CG-STREET",
                                          expected_version=returned.version), metadata=dispatcher("330102"))
    assert incident_status(stub, incident.id, ipb.STATUS_DISPATCHED).department_code == "CG-STREET"


def transition(stub, incident, action, who, **kw):
    return stub.Transition(ipb.TransitionRequest(incident_id=incident.id, action=action,
                                                 expected_version=incident.version, **kw), metadata=who)


def task_where(dispatch_stub, task_id, condition):
    return wait_for(lambda: (lambda t: t if condition(t) else None)(get(dispatch_stub, task_id)))


def test_a_void_request_pauses_the_task_and_its_approval_voids_both(environment, stub, dispatch_stub,
                                                                     dispatch_nameko):
    incident, task = acknowledged_case(stub, dispatch_stub)
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "incidents.incident.#")
    try:
        asked = transition(stub, incident, ipb.ACTION_REQUEST_VOID, dispatcher("330102"),
                           note="a duplicate of last night's report")
        assert (asked.status, asked.pending) == (ipb.STATUS_IN_PROGRESS, "void")
        paused = task_where(dispatch_stub, task.id, lambda t: t.clock_paused)
        assert list(paused.holds) == ["case"] and open_deadlines(task.id, "resolve") == 0
        err = call_error(stub.Transition, ipb.TransitionRequest(
            incident_id=incident.id, action=ipb.ACTION_APPROVE_VOID, expected_version=asked.version, note="ok"),
            metadata=dispatcher("330102"))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        err = call_error(stub.Transition, ipb.TransitionRequest(
            incident_id=incident.id, action=ipb.ACTION_APPROVE_PARK, expected_version=asked.version, note="ok"),
            metadata=LEAD)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "no park request" in err.details()
        voided = transition(stub, asked, ipb.ACTION_APPROVE_VOID, LEAD, note="confirmed duplicate")
        assert (voided.status, voided.pending) == (ipb.STATUS_VOIDED, "")
        ended = task_where(dispatch_stub, task.id, lambda t: t.status == "voided")
        events = tap.drain(lambda ev: any(e["type"] == "incidents.incident.voided" for e in ev), timeout=20)
    finally:
        tap.close()
    assert open_deadlines(ended.id, "resolve") == 0
    mine = [e for e in events if e["data"]["incident_id"] == incident.id]
    assert [(e["type"], e["data"]["clock_paused"], e["data"]["pending"]) for e in mine] == [
        ("incidents.incident.void_requested", True, "void"), ("incidents.incident.voided", False, None)]
    assert_payloads_match_protos(mine)
    history = stub.GetIncident(ipb.GetIncidentRequest(incident_id=incident.id), metadata=ADMIN).history
    assert [(h.action, h.actor_id) for h in history][-2:] == [("request_void", "dispatcher-330102"),
                                                              ("approve_void", "centre-head")]


def test_a_refused_void_lets_the_clock_run_again(stub, dispatch_stub, dispatch_nameko):
    incident, task = acknowledged_case(stub, dispatch_stub)
    asked = transition(stub, incident, ipb.ACTION_REQUEST_VOID, officer(D1_GRID), note="I filed it twice")
    task_where(dispatch_stub, task.id, lambda t: t.clock_paused)
    refused = transition(stub, asked, ipb.ACTION_REFUSE_VOID, LEAD, note="the other report is another bin")
    assert (refused.status, refused.pending) == (ipb.STATUS_IN_PROGRESS, "")
    running = task_where(dispatch_stub, task.id, lambda t: not t.clock_paused)
    assert running.status == "acknowledged" and open_deadlines(task.id, "resolve") == 1
    assert [h.action for h in running.history][-2:] == ["pause", "resume"]


def test_a_parked_case_leaves_the_queues_and_comes_back_at_its_review_date(stub, dispatch_stub, dispatch_nameko):
    incident, task = acknowledged_case(stub, dispatch_stub)
    for review_at, message in ((None, "review_at"), (datetime.now(timezone.utc) - timedelta(hours=1), "future")):
        req = ipb.TransitionRequest(incident_id=incident.id, action=ipb.ACTION_REQUEST_PARK,
                                    expected_version=incident.version, note="no budget until spring")
        if review_at:
            req.review_at.FromDatetime(review_at)
        err = call_error(stub.Transition, req, metadata=department(SANITATION))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and message in err.details()
    req = ipb.TransitionRequest(incident_id=incident.id, action=ipb.ACTION_REQUEST_PARK,
                                expected_version=incident.version, note="no budget until spring")
    req.review_at.FromDatetime(datetime.now(timezone.utc) + timedelta(seconds=4))
    asked = stub.Transition(req, metadata=department(SANITATION))
    assert asked.pending == "park" and asked.HasField("review_at")
    parked = transition(stub, asked, ipb.ACTION_APPROVE_PARK, LEAD, note="parked until the budget")
    assert parked.status == ipb.STATUS_PARKED
    # The timer row brings it back (dispatch's scheduler, claimed as deadlines are).
    back = incident_status(stub, incident.id, ipb.STATUS_IN_PROGRESS)
    assert (back.pending, back.HasField("review_at")) == ("", False)
    running = task_where(dispatch_stub, task.id, lambda t: t.status == "acknowledged" and not t.clock_paused)
    actions = [h.action for h in running.history]
    assert actions[actions.index("park"):] == ["park", "review due", "unpark", "resume"]
    assert [h.action for h in stub.GetIncident(ipb.GetIncidentRequest(incident_id=incident.id),
                                               metadata=ADMIN).history][-3:] == ["request_park", "approve_park",
                                                                                 "unpark"]
    assert open_deadlines(task.id, "review") == 0 and open_deadlines(task.id, "resolve") == 1


def test_supervision_raises_the_priority_and_tells_the_department_and_its_superior(environment, stub, dispatch_stub,
                                                                                  dispatch_nameko):
    incident, task = acknowledged_case(stub, dispatch_stub)
    err = call_error(stub.Transition, ipb.TransitionRequest(
        incident_id=incident.id, action=ipb.ACTION_REQUEST_SUPERVISE, expected_version=incident.version,
        note="third complaint"), metadata=officer(D1_GRID))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "dispatch.task.supervised")
    try:
        asked = transition(stub, incident, ipb.ACTION_REQUEST_SUPERVISE, dispatcher("330102"), note="third complaint")
        supervised = transition(stub, asked, ipb.ACTION_APPROVE_SUPERVISE, LEAD, note="督办: by Friday")
        assert (supervised.supervised, supervised.priority, supervised.pending) == (True, 1, "")
        events = tap.drain(lambda ev: any(e["data"]["task_id"] == task.id for e in ev), timeout=20)
    finally:
        tap.close()
    e = next(e["data"] for e in events if e["data"]["task_id"] == task.id)
    assert (e["department_code"], e["superior_unit_code"], e["priority"], e["supervised"]) == \
        (SANITATION, "330102", 1, True)
    assert_payloads_match_protos([x for x in events if x["data"]["task_id"] == task.id])
    t = get(dispatch_stub, task.id)
    assert (t.priority, t.supervised, t.clock_paused) == (1, True, False)  # supervision does not stop the clock
    err = call_error(stub.Transition, ipb.TransitionRequest(
        incident_id=incident.id, action=ipb.ACTION_REQUEST_SUPERVISE, expected_version=supervised.version,
        note="again"), metadata=dispatcher("330102"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "supervised already" in err.details()


def test_the_tasks_procedures_over_nameko_rpc(environment, stub, dispatch_stub, dispatch_nameko):
    from nameko.exceptions import RemoteError
    from nameko.standalone.rpc import ClusterRpcProxy

    def rpc(role, scope, member_id):
        return ClusterRpcProxy({"AMQP_URI": environment["GRIDBUS_AMQP_URI"]}, timeout=15, context_data={
            "authorization": f"Bearer {token(role, scope, member_id=member_id)}"})
    _, task = acknowledged_case(stub, dispatch_stub)
    with rpc("department", "330100", SANITATION) as dept:
        asked = dept.dispatch.request_procedure(task.id, "return", "a market stall: the market office's", task.version)
        assert (asked["pending"], asked["holds"], asked["status"]) == ("return", ["return"], "acknowledged")
    with rpc("dispatcher", "330102", "d-rpc") as disp:
        with pytest.raises(RemoteError) as bad:
            disp.dispatch.decide_procedure(task.id, "return", False, "", asked["version"])
        assert bad.value.exc_type == "InvalidArgument"
        kept = disp.dispatch.decide_procedure(task.id, "return", False, "the stall is on the pavement: yours",
                                              asked["version"])
    assert (kept["pending"], kept["holds"], kept["department_code"], kept["returned"]) == \
        (None, [], SANITATION, 0)
