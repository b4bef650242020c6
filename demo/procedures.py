"""The demo's side procedures, one of each, through the public APIs: a department asks for more
time and a return, a dispatcher asks to void a duplicate and for supervision, a department asks
to park a case until a review date; an admin or dispatcher decides each, with a reason. The
deadline clock stands still while they wait (dispatch's task history shows the pause)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import grpc

from gridbus.dispatch.v1 import dispatch_pb2 as dpb
from gridbus.incidents.v1 import incidents_pb2 as ipb
from shared.auth import mint_token


def _md(subject: str, role: str, *scope: str):
    return [("authorization", f"Bearer {mint_token(subject, role, scope)}")]


def _wait(fn, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    return fn()


def _status(incident) -> str:
    return ipb.Status.Name(incident.status).removeprefix("STATUS_").lower()


def run(incidents, dispatch, officer, city_code: str, report) -> None:
    """`officer`: (member, grid code, cell, metadata); `report(cell, category)`: a ReportRequest."""
    _, grid, cell, me = officer
    district = grid[:6]
    dispatcher = _md(f"dispatcher-{district}", "dispatcher", district)
    head = _md("centre-head", "admin", city_code)  # the command centre's management decides the case's procedures

    def task_of(incident_id, want=lambda t: True):
        def get():
            try:
                t = dispatch.GetTask(dpb.GetTaskRequest(incident_id=incident_id), metadata=head)
            except grpc.RpcError as exc:  # not made yet: dispatch makes it from the report's event
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                return None
            return t if want(t) else None
        return _wait(get)

    def incident(incident_id, status=None):
        def get():
            i = incidents.GetIncident(ipb.GetIncidentRequest(incident_id=incident_id), metadata=head).incident
            return i if status is None or i.status == status else None
        return _wait(get)

    def case(category="0102"):
        i = incidents.Report(report(cell, category), metadata=me).incident
        t = task_of(i.id, lambda t: t.department_code)
        dept = _md(t.department_code, "department", city_code)
        t = dispatch.Acknowledge(dpb.AcknowledgeRequest(task_id=t.id, expected_version=t.version), metadata=dept)
        return incident(i.id, ipb.STATUS_IN_PROGRESS), t, dept

    def act(i, action, who, note, **kw):
        return incidents.Transition(ipb.TransitionRequest(incident_id=i.id, action=action, expected_version=i.version,
                                                          note=note, **kw), metadata=who)

    print("== side procedures: asked for with a reason, decided by another role with a reason")
    i, t, dept = case()
    t = dispatch.RequestProcedure(dpb.ProcedureRequest(task_id=t.id, procedure="extension", minutes=120,
                                                       reason="the compactor is in repair", expected_version=t.version),
                                  metadata=dept)
    due = t.resolve_due_at.ToDatetime()
    t = dispatch.DecideProcedure(dpb.ProcedureDecision(task_id=t.id, procedure="extension", approve=True,
                                                       granted_minutes=60, reason="one working hour",
                                                       expected_version=t.version), metadata=dispatcher)
    print(f"   extension (延期): {t.department_code} asked 120 working minutes, granted {t.extended_minutes}; "
          f"resolve due {due:%m-%d %H:%M} -> {t.resolve_due_at.ToDatetime():%m-%d %H:%M} UTC")

    i, t, dept = case()
    t = dispatch.RequestProcedure(dpb.ProcedureRequest(task_id=t.id, procedure="return", expected_version=t.version,
                                                       reason="the bin belongs to the market"), metadata=dept)
    t = dispatch.DecideProcedure(dpb.ProcedureDecision(task_id=t.id, procedure="return", approve=True,
                                                       reason="agreed: the market office's",
                                                       expected_version=t.version), metadata=dispatcher)
    back = incident(i.id, ipb.STATUS_REPORTED)
    t = dispatch.Assign(dpb.AssignRequest(task_id=t.id, department_code="CG-STREET", expected_version=t.version),
                        metadata=dispatcher)
    print(f"   return (回退): back to the manual queue (incident {'reported' if back else '?'}), "
          f"rerouted by hand to {t.department_code}")

    i, t, _ = case()
    i = act(i, ipb.ACTION_REQUEST_VOID, dispatcher, "the officer reported it twice")
    paused = task_of(i.id, lambda t: t.clock_paused)
    i = act(i, ipb.ACTION_APPROVE_VOID, head, "a duplicate")
    t = task_of(i.id, lambda t: t.status == "voided")
    print(f"   void (作废): clock paused while it waited ({', '.join(paused.holds)}); case {_status(i)}, "
          f"task {t.status if t else '?'}")

    i, t, dept = case()
    req = ipb.TransitionRequest(incident_id=i.id, action=ipb.ACTION_REQUEST_PARK, expected_version=i.version,
                                note="no budget for the new kerb until the next quarter")
    req.review_at.FromDatetime(datetime.now(timezone.utc) + timedelta(seconds=5))
    i = incidents.Transition(req, metadata=dept)
    i = act(i, ipb.ACTION_APPROVE_PARK, head, "parked until the review date")
    print(f"   park (挂账): {_status(i)} until {i.review_at.ToDatetime():%H:%M:%S} UTC ...", end="", flush=True)
    back = incident(i.id, ipb.STATUS_IN_PROGRESS)
    t = task_of(i.id, lambda t: not t.clock_paused)
    print(f" back {'in progress' if back else '?'} at its review date; "
          f"{t.paused_minutes if t else '?'} working minutes paused")

    i, t, _ = case()
    i = act(i, ipb.ACTION_REQUEST_SUPERVISE, dispatcher, "the third complaint this week")
    try:
        act(i, ipb.ACTION_APPROVE_SUPERVISE, dispatcher, "self-approved")
    except grpc.RpcError as exc:  # the asker's role may not decide
        print(f"   supervise (督办): a dispatcher may not approve it: {exc.code().name}")
    i = act(i, ipb.ACTION_APPROVE_SUPERVISE, head, "督办: fixed by Friday")
    t = task_of(i.id, lambda t: t.supervised)
    print(f"   supervise (督办): priority {i.priority}, task priority {t.priority if t else '?'}; "
          f"{t.department_code if t else '?'} and district {district} told")
