"""Dispatch on the real servers, end to end with the incidents service: routing, the manual
queue, dispatcher and department actions, exactly-once under redelivery and crashes, durable
deadlines and escalation, evaluation and authorization."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import grpc
from sqlalchemy import text

from gridbus.dispatch.v1 import dispatch_pb2 as pb
from gridbus.incidents.v1 import incidents_pb2 as ipb
from services.dispatch import operations as ops
from services.dispatch.operations.changes import calendar
from shared.db import session_scope
from tests.event_contract import assert_payloads_match_protos
from tests.incidents.conftest import GRIDS, report_request
from tests.incidents.test_report import call_error
from tests.support import (EventTap, metadata, outbox_published, publish_event, queue_settled, service_process,
                           token, wait_for)

D2_GRID = next(g for g in GRIDS if g.startswith("330103"))
D1_GRID = next(g for g in GRIDS if g.startswith("330102"))
ADMIN = metadata(token("admin", "330100", member_id="ops-admin"))
HANDLER_QUEUE = "gridbus.dispatch.on_incident_reported"


def officer(grid):
    return metadata(token("officer", grid, member_id=f"officer-{grid[-3:]}"))


def dispatcher(district):
    return metadata(token("dispatcher", district, member_id=f"dispatcher-{district}"))


def department(code):
    return metadata(token("department", "330100", member_id=code))


def task_for(dispatch_stub, incident_id, who=ADMIN):
    def get():
        try:
            return dispatch_stub.GetTask(pb.GetTaskRequest(incident_id=incident_id), metadata=who)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
    return wait_for(get)


def incident_status(stub, incident_id, want):
    def check():
        got = stub.GetIncident(ipb.GetIncidentRequest(incident_id=incident_id), metadata=ADMIN).incident
        return got if got.status == want else None
    return wait_for(check)


def count(sql, **params):
    with session_scope() as s:
        return s.execute(text(sql), params).scalar()


def test_routing_precedence_end_to_end(stub, dispatch_stub, dispatch_nameko):
    cases = [(D1_GRID, "0102", "CG-SANITATION"),   # category 01
             (D1_GRID, "0505", "JJ-TRAFFIC"),      # 0505 beats 05
             (D2_GRID, "0501", "D2-STREET"),       # 05 in district 330103 beats 05 anywhere
             (D1_GRID, "0501", "CG-STREET"),
             (D1_GRID, "0601", "SZ-FACILITIES")]
    for grid, category, expected in cases:
        incident = stub.Report(report_request(grid, category=category), metadata=officer(grid)).incident
        task = task_for(dispatch_stub, incident.id)
        assert (task.status, task.department_code) == ("assigned", expected), (category, grid)
        dispatched = incident_status(stub, incident.id, ipb.STATUS_DISPATCHED)
        assert dispatched and dispatched.department_code == expected
        assert task.ack_due_at.ToDatetime() > task.dispatched_at.ToDatetime()


def test_working_time_deadlines_follow_the_calendar(stub, dispatch_stub, dispatch_nameko):
    incident = stub.Report(report_request(D1_GRID, category="0301"), metadata=officer(D1_GRID)).incident
    task = task_for(dispatch_stub, incident.id)
    start = task.dispatched_at.ToDatetime(tzinfo=timezone.utc)
    assert task.ack_due_at.ToDatetime(tzinfo=timezone.utc) == calendar().add(start, timedelta(minutes=60))
    assert task.resolve_due_at.ToDatetime(tzinfo=timezone.utc) == calendar().add(start, timedelta(minutes=1440))


def test_a_tie_is_refused_when_the_rule_is_written(dispatch_stub):
    rule = pb.Rule(category_prefix="05", grid_code="330103", department_code="CG-STREET", ack_minutes=5,
                   resolve_minutes=60)
    err = call_error(dispatch_stub.CreateRule, pb.CreateRuleRequest(rule=rule), metadata=ADMIN)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "tie with rule" in err.details()
    assert "D2-STREET" in err.details()
    rule.priority = 5
    created = dispatch_stub.CreateRule(pb.CreateRuleRequest(rule=rule), metadata=ADMIN)
    dispatch_stub.DeactivateRule(pb.DeactivateRuleRequest(id=created.id), metadata=ADMIN)
    err = call_error(dispatch_stub.CreateRule, pb.CreateRuleRequest(rule=rule), metadata=dispatcher("330103"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_the_manual_queue_and_a_dispatchers_assignment(stub, dispatch_stub, dispatch_nameko):
    routed = stub.Report(report_request(D2_GRID, category="0108"), metadata=officer(D2_GRID)).incident
    assert task_for(dispatch_stub, routed.id).department_code == "CG-SANITATION"
    # The demo rules cover every category; a rule is skipped where its department does not work,
    # so while sanitation serves only district 330102, category 01 in 330103 has no rule.
    with session_scope() as s:
        s.execute(text("UPDATE dispatch.departments SET serves = '{330102}' WHERE code = 'CG-SANITATION'"))
    try:
        other = stub.Report(report_request(D2_GRID, category="0107", title="fumes"), metadata=officer(D2_GRID)).incident
        task = task_for(dispatch_stub, other.id)
    finally:
        with session_scope() as s:
            s.execute(text("UPDATE dispatch.departments SET serves = '{330100}' WHERE code = 'CG-SANITATION'"))
    assert (task.status, task.department_code) == ("queued", "")
    assert task.next_due_at.ToDatetime() > datetime.utcnow()
    queue = dispatch_stub.ListQueue(pb.ListQueueRequest(unit_code="330103"), metadata=dispatcher("330103")).tasks
    assert other.id in [t.incident_id for t in queue]
    assert incident_status(stub, other.id, ipb.STATUS_REPORTED)  # stays reported until assigned
    err = call_error(dispatch_stub.Assign, pb.AssignRequest(task_id=task.id, department_code="CG-STREET",
                                                            expected_version=task.version),
                     metadata=dispatcher("330102"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assigned = dispatch_stub.Assign(pb.AssignRequest(task_id=task.id, department_code="CG-SANITATION",
                                                     expected_version=task.version), metadata=dispatcher("330103"))
    assert assigned.status == "assigned"
    assert incident_status(stub, other.id, ipb.STATUS_DISPATCHED).department_code == "CG-SANITATION"


def test_departments_handle_and_the_incident_follows(stub, dispatch_stub, dispatch_nameko):
    incident = stub.Report(report_request(D1_GRID, category="0102"), metadata=officer(D1_GRID)).incident
    task = task_for(dispatch_stub, incident.id)
    err = call_error(dispatch_stub.Acknowledge, pb.AcknowledgeRequest(task_id=task.id, expected_version=task.version),
                     metadata=department("CG-STREET"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    task = dispatch_stub.Acknowledge(pb.AcknowledgeRequest(task_id=task.id, expected_version=task.version),
                                     metadata=department("CG-SANITATION"))
    assert incident_status(stub, incident.id, ipb.STATUS_IN_PROGRESS)
    task = dispatch_stub.ReportProgress(pb.ProgressRequest(task_id=task.id, note="truck on its way"),
                                        metadata=department("CG-SANITATION"))
    err = call_error(dispatch_stub.Resolve, pb.ResolveRequest(task_id=task.id, resolution="done",
                                                              expected_version=task.version - 1),
                     metadata=department("CG-SANITATION"))
    assert err.code() == grpc.StatusCode.ABORTED
    task = dispatch_stub.Resolve(pb.ResolveRequest(task_id=task.id, resolution="collected",
                                                   expected_version=task.version), metadata=department("CG-SANITATION"))
    resolved = incident_status(stub, incident.id, ipb.STATUS_RESOLVED)
    # The officer checks, the dispatcher closes (incidents); the task follows.
    v = stub.Transition(ipb.TransitionRequest(incident_id=incident.id, action=ipb.ACTION_VERIFY,
                                              expected_version=resolved.version), metadata=officer(D1_GRID))
    stub.Transition(ipb.TransitionRequest(incident_id=incident.id, action=ipb.ACTION_CLOSE, expected_version=v.version),
                    metadata=dispatcher("330102"))
    assert wait_for(lambda: dispatch_stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=ADMIN).status == "closed")
    history = [h.action for h in dispatch_stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=ADMIN).history]
    assert history == ["create", "acknowledge", "progress", "resolve", "close"]


def test_reroute_and_reject_reach_the_incident(stub, dispatch_stub, dispatch_nameko):
    incident = stub.Report(report_request(D1_GRID, category="0201"), metadata=officer(D1_GRID)).incident
    task = task_for(dispatch_stub, incident.id)
    err = call_error(dispatch_stub.Reroute, pb.RerouteRequest(task_id=task.id, department_code="CG-STREET",
                                                              expected_version=task.version),
                     metadata=dispatcher("330102"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in err.details()
    task = dispatch_stub.Reroute(pb.RerouteRequest(task_id=task.id, department_code="CG-STREET", reason="it is a stall",
                                                   expected_version=task.version), metadata=dispatcher("330102"))
    assert wait_for(lambda: stub.GetIncident(ipb.GetIncidentRequest(incident_id=incident.id),
                                             metadata=ADMIN).incident.department_code == "CG-STREET")
    task = dispatch_stub.Reject(pb.RejectRequest(task_id=task.id, reason="private property",
                                                 expected_version=task.version), metadata=dispatcher("330102"))
    assert incident_status(stub, incident.id, ipb.STATUS_REJECTED)


def test_a_duplicated_event_makes_one_task(environment, stub, dispatch_stub, dispatch_nameko):
    """The broker redelivers, or the incidents relay publishes twice: same event id."""
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "dispatch.task.created")
    try:
        incident_id = str(uuid.uuid4())
        data = {"incident_id": incident_id, "category": "0102", "priority": 3, "grid_code": D1_GRID,
                "lineage": ["330100", D1_GRID[:6], D1_GRID[:9], D1_GRID[:12], D1_GRID]}
        event_id = publish_event(environment["GRIDBUS_AMQP_URI"], "incidents.incident.reported", data)
        publish_event(environment["GRIDBUS_AMQP_URI"], "incidents.incident.reported", data, event_id=event_id)
        # Another event id for the same incident (a replay by hand) still makes no second task.
        publish_event(environment["GRIDBUS_AMQP_URI"], "incidents.incident.reported", data)
        assert task_for(dispatch_stub, incident_id)
        wait_for(lambda: queue_settled(environment["GRIDBUS_AMQP_URI"], HANDLER_QUEUE))  # all three handled
        wait_for(outbox_published("dispatch"))  # and every event they made is in the tap
        events = tap.drain()
    finally:
        tap.close()
    assert count("SELECT count(*) FROM dispatch.tasks WHERE incident_id = :i", i=incident_id) == 1
    assert len([e for e in events if e["data"]["incident_id"] == incident_id]) == 1
    assert_payloads_match_protos(events)


def test_a_crash_between_taking_the_event_and_committing(environment, stub, dispatch_stub, dispatch_nameko):
    dispatch_nameko.stop()
    crashing = service_process(environment, "dispatch", "nameko", name="dispatch-crashing",
                               env={"GRIDBUS_FAILPOINT": "dispatch.before_commit"})
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "dispatch.task.created")
    try:
        incident = stub.Report(report_request(D1_GRID, category="0104"), metadata=officer(D1_GRID)).incident
        crashing.start()
        assert crashing.popen.wait(60) == 137  # died holding the event, before its commit
        assert count("SELECT count(*) FROM dispatch.tasks WHERE incident_id = :i", i=incident.id) == 0
        dispatch_nameko.start()
        dispatch_nameko.wait_ready()
        assert task_for(dispatch_stub, incident.id)
        assert incident_status(stub, incident.id, ipb.STATUS_DISPATCHED)
        wait_for(lambda: queue_settled(environment["GRIDBUS_AMQP_URI"], HANDLER_QUEUE))  # the redelivery handled
        wait_for(outbox_published("dispatch"))
        events = [e for e in tap.drain() if e["data"]["incident_id"] == incident.id]
    finally:
        tap.close()
        crashing.stop()
    assert len(events) == 1
    assert count("SELECT count(*) FROM dispatch.tasks WHERE incident_id = :i", i=incident.id) == 1
    assert_payloads_match_protos(events)


def miss_acknowledge_deadline(task_id: str) -> None:
    with session_scope() as s:
        s.execute(text("UPDATE dispatch.deadlines SET due_at = now() - interval '1 minute' "
                       "WHERE task_id = :t AND kind = 'acknowledge'"), {"t": task_id})


def test_a_deadline_missed_while_the_service_was_down_fires_once_after_restart(environment, stub, dispatch_stub,
                                                                                dispatch_nameko):
    incident = stub.Report(report_request(D1_GRID, category="0102"), metadata=officer(D1_GRID)).incident
    task = task_for(dispatch_stub, incident.id)
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "dispatch.task.escalated")
    try:
        dispatch_nameko.kill9()
        miss_acknowledge_deadline(task.id)  # time passes while it is down: the acknowledge deadline goes by
        dispatch_nameko.start()
        dispatch_nameko.wait_ready()
        events = tap.drain(lambda ev: any(e["data"]["task_id"] == task.id for e in ev), timeout=20)
        # It must not fire it again: another task's deadline, missed only now, fires on a later
        # tick of the timer, which would have fired this one again too.
        later = task_for(dispatch_stub, stub.Report(report_request(D1_GRID, category="0102"),
                                                    metadata=officer(D1_GRID)).incident.id)
        miss_acknowledge_deadline(later.id)
        tap.drain(lambda ev: any(e["data"]["task_id"] == later.id for e in ev), timeout=20)
        wait_for(outbox_published("dispatch"))
        events = [e for e in tap.drain() if e["data"]["task_id"] == task.id]
    finally:
        tap.close()
    assert len(events) == 1
    e = events[0]["data"]
    assert (e["deadline_kind"], e["level"], e["level_name"], e["unit_code"]) == ("acknowledge", 1, "community", D1_GRID[:12])
    assert_payloads_match_protos(events)
    escalated = dispatch_stub.ListQueue(pb.ListQueueRequest(unit_code="330102", escalated_only=True),
                                        metadata=dispatcher("330102")).tasks
    assert task.id in [t.id for t in escalated]


def test_escalation_climbs_to_the_city(stub, dispatch_stub, dispatch_nameko):
    incident = stub.Report(report_request(D2_GRID, category="0603"), metadata=officer(D2_GRID)).incident
    task = task_for(dispatch_stub, incident.id)
    now = datetime.now(timezone.utc)
    levels = []
    for hours in (200, 202, 204, 206, 208):  # a simulated clock, far past every deadline
        ops.fire_due_deadlines(now + timedelta(hours=hours))
        t = dispatch_stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=ADMIN)
        levels.append((t.escalation_level, t.escalated_to))
    assert levels[:4] == [(1, D2_GRID[:12]), (2, D2_GRID[:9]), (3, "330103"), (4, "330100")]
    assert levels[4] == (4, "330100")  # the city is the top: no further acknowledge deadline
    assert count("SELECT count(*) FROM dispatch.deadlines WHERE task_id = :t AND kind = 'acknowledge' "
                 "AND fired_at IS NULL AND cancelled_at IS NULL", t=task.id) == 0


def test_evaluation_over_grpc(stub, dispatch_stub, dispatch_nameko):
    req = pb.EvaluationRequest(group_by="department")
    getattr(req, "from").FromDatetime(datetime.now(timezone.utc) - timedelta(hours=1))
    req.to.FromDatetime(datetime.now(timezone.utc) + timedelta(minutes=1))
    rows = {r.key: r for r in dispatch_stub.GetEvaluation(req, metadata=ADMIN).rows}
    assert rows["all"].dispatched >= 5 and rows["CG-SANITATION"].dispatched >= 1
    assert rows["CG-SANITATION"].closure_rate > 0  # the case closed above
    req.group_by, req.unit_code = "district", "330102"
    rows = {r.key: r for r in dispatch_stub.GetEvaluation(req, metadata=dispatcher("330102")).rows}
    assert set(rows) == {"330102", "all"}
    req.unit_code = "330103"
    err = call_error(dispatch_stub.GetEvaluation, req, metadata=dispatcher("330102"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_authorization_refusals(dispatch_stub):
    err = call_error(dispatch_stub.ListQueue, pb.ListQueueRequest(), metadata=officer(D1_GRID))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(dispatch_stub.ListQueue, pb.ListQueueRequest(unit_code="330103"), metadata=dispatcher("330102"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(dispatch_stub.UpsertDepartment, pb.UpsertDepartmentRequest(
        department=pb.Department(code="X", name="X", serves=["330100"])), metadata=dispatcher("330102"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(dispatch_stub.ListQueue, pb.ListQueueRequest())
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_dispatch_made_directly_in_incidents_brings_the_task_along(stub, dispatch_stub, dispatch_nameko):
    with session_scope() as s:
        s.execute(text("UPDATE dispatch.departments SET serves = '{330102}' WHERE code = 'CG-SANITATION'"))
    try:
        incident = stub.Report(report_request(D2_GRID, category="0104"), metadata=officer(D2_GRID)).incident
        task = task_for(dispatch_stub, incident.id)
    finally:
        with session_scope() as s:
            s.execute(text("UPDATE dispatch.departments SET serves = '{330100}' WHERE code = 'CG-SANITATION'"))
    assert task.status == "queued"
    stub.Transition(ipb.TransitionRequest(incident_id=incident.id, action=ipb.ACTION_DISPATCH, expected_version=1,
                                          department_code="CG-SANITATION"), metadata=dispatcher("330103"))
    moved = wait_for(lambda: (lambda t: t if t.status == "assigned" else None)(
        dispatch_stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=ADMIN)))
    assert moved.department_code == "CG-SANITATION" and moved.ack_due_at.seconds > 0
    assert count("SELECT count(*) FROM dispatch.deadlines WHERE task_id = :t AND kind = 'assign' "
                 "AND fired_at IS NULL AND cancelled_at IS NULL", t=task.id) == 0
    assert count("SELECT count(*) FROM dispatch.deadlines WHERE task_id = :t AND kind = 'acknowledge' "
                 "AND cancelled_at IS NULL", t=task.id) == 1


def test_every_event_dispatch_stored_matches_its_events_proto(stub, dispatch_stub, dispatch_nameko):
    """The outbox is the event store: each event as it leaves. Whatever this run has made so far
    (every kind, after the tests above), each payload is what events.proto says it is."""
    incident = stub.Report(report_request(D1_GRID, category="0102"), metadata=officer(D1_GRID)).incident
    assert task_for(dispatch_stub, incident.id)
    with session_scope() as s:
        events = s.execute(text("SELECT type, data FROM dispatch.outbox ORDER BY id")).mappings().all()
    assert "dispatch.task.created" in {e["type"] for e in events}
    assert_payloads_match_protos(events)


def test_a_rule_change_reaches_the_routing_table_every_process_caches(stub, dispatch_stub, dispatch_nameko):
    """dispatch keeps the rules and departments in memory (routing_table.py); a rule written over
    gRPC (another process) is routed by as soon as it is committed, and its deactivation too."""
    def routed(category):
        incident = stub.Report(report_request(D1_GRID, category=category), metadata=officer(D1_GRID)).incident
        return task_for(dispatch_stub, incident.id).department_code

    assert routed("0601") == "SZ-FACILITIES"  # the table is loaded now
    rule = pb.Rule(category_prefix="0601", grid_code=D1_GRID[:6], department_code="CG-STREET", ack_minutes=5,
                   resolve_minutes=60)
    created = dispatch_stub.CreateRule(pb.CreateRuleRequest(rule=rule), metadata=ADMIN)
    assert routed("0601") == "CG-STREET"      # the NOTIFY reached the process before the event
    dispatch_stub.DeactivateRule(pb.DeactivateRuleRequest(id=created.id), metadata=ADMIN)
    assert routed("0601") == "SZ-FACILITIES"


def test_the_routing_channel_is_the_migrations():
    from importlib import util
    from pathlib import Path

    from services.dispatch import routing_table
    path = Path(routing_table.__file__).parent / "migrations" / "versions" / "0005_routing_notify.py"
    spec = util.spec_from_file_location("routing_notify", path)
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.CHANNEL == routing_table.CHANNEL
