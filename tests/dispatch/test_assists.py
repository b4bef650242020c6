"""Lead and assisting departments (主办/协办) on the real servers: each assisting department has
its own task and deadlines; only the lead's resolution moves the case; the case closes when the
lead's task is done and the assisting tasks are done or released."""
from __future__ import annotations

import grpc

from gridbus.dispatch.v1 import dispatch_pb2 as pb
from gridbus.incidents.v1 import incidents_pb2 as ipb
from tests.dispatch.test_dispatch import ADMIN, D1_GRID, count, department, dispatcher, incident_status, officer
from tests.dispatch.test_procedures import SANITATION, acknowledged_case, get, task_where
from tests.incidents.conftest import report_request
from tests.incidents.test_report import call_error
from tests.support import wait_for

DISPATCHER = dispatcher("330102")


def incident_where(stub, incident_id, condition):
    return wait_for(lambda: (lambda i: i if condition(i) else None)(
        stub.GetIncident(ipb.GetIncidentRequest(incident_id=incident_id), metadata=ADMIN).incident))


def test_assisting_departments_work_their_own_tasks_and_the_case_closes_without_them(stub, dispatch_stub,
                                                                                     dispatch_nameko):
    incident, lead = acknowledged_case(stub, dispatch_stub)
    lead = dispatch_stub.AddAssist(pb.AssistRequest(task_id=lead.id, department_code="CG-STREET",
                                                    reason="move the stall that blocks the bins",
                                                    expected_version=lead.version), metadata=DISPATCHER)
    lead = dispatch_stub.AddAssist(pb.AssistRequest(task_id=lead.id, department_code="SZ-FACILITIES",
                                                    reason="check the drain under the bins",
                                                    expected_version=lead.version), metadata=DISPATCHER)
    street, facilities = sorted(lead.assists, key=lambda a: a.department_code)
    assert (street.department_code, street.lead_task_id, street.status) == ("CG-STREET", lead.id, "assigned")
    assert street.HasField("ack_due_at") and street.HasField("resolve_due_at")  # its own deadlines
    assert count("SELECT count(*) FROM dispatch.deadlines WHERE task_id = :t AND cancelled_at IS NULL",
                 t=street.id) == 2
    err = call_error(dispatch_stub.AddAssist, pb.AssistRequest(
        task_id=lead.id, department_code="CG-STREET", reason="again", expected_version=lead.version),
        metadata=DISPATCHER)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "already" in err.details()
    err = call_error(dispatch_stub.AddAssist, pb.AssistRequest(
        task_id=lead.id, department_code=SANITATION, reason="x", expected_version=lead.version), metadata=DISPATCHER)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "leads" in err.details()
    assert incident_where(stub, incident.id, lambda i: len(i.assisting) == 2).assisting == ["CG-STREET",
                                                                                           "SZ-FACILITIES"]
    # The assisting department does its part: the case stays in progress.
    street = dispatch_stub.Acknowledge(pb.AcknowledgeRequest(task_id=street.id, expected_version=street.version),
                                       metadata=department("CG-STREET"))
    err = call_error(dispatch_stub.Reroute, pb.RerouteRequest(task_id=street.id, department_code="JJ-TRAFFIC",
                                                              reason="x", expected_version=street.version),
                     metadata=DISPATCHER)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "assisting task" in err.details()
    street = dispatch_stub.Resolve(pb.ResolveRequest(task_id=street.id, resolution="stall moved",
                                                     expected_version=street.version), metadata=department("CG-STREET"))
    assert street.status == "resolved"
    after_part = incident_where(stub, incident.id, lambda i: list(i.assisting) == ["SZ-FACILITIES"])
    assert after_part.status == ipb.STATUS_IN_PROGRESS  # not the case's result
    # Only the lead reports the result; the case waits for the other assisting department.
    lead = get(dispatch_stub, lead.id)
    dispatch_stub.Resolve(pb.ResolveRequest(task_id=lead.id, resolution="bins emptied", expected_version=lead.version),
                          metadata=department(SANITATION))
    resolved = incident_status(stub, incident.id, ipb.STATUS_RESOLVED)
    verified = stub.Transition(ipb.TransitionRequest(incident_id=incident.id, action=ipb.ACTION_VERIFY,
                                                     expected_version=resolved.version), metadata=officer(D1_GRID))
    err = call_error(stub.Transition, ipb.TransitionRequest(incident_id=incident.id, action=ipb.ACTION_CLOSE,
                                                            expected_version=verified.version), metadata=DISPATCHER)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "SZ-FACILITIES" in err.details()
    facilities = get(dispatch_stub, facilities.id)
    released = dispatch_stub.ReleaseAssist(pb.ReleaseAssistRequest(
        task_id=facilities.id, reason="the drain was fine", expected_version=facilities.version), metadata=DISPATCHER)
    assert released.status == "released"
    ready = incident_where(stub, incident.id, lambda i: not i.assisting)
    closed = stub.Transition(ipb.TransitionRequest(incident_id=incident.id, action=ipb.ACTION_CLOSE,
                                                   expected_version=ready.version), metadata=DISPATCHER)
    assert closed.status == ipb.STATUS_CLOSED
    assert task_where(dispatch_stub, lead.id, lambda t: t.status == "closed")
    history = [h.action for h in stub.GetIncident(ipb.GetIncidentRequest(incident_id=incident.id),
                                                  metadata=ADMIN).history]
    assert history.count("add_assist") == 2 and history.count("end_assist") == 2


def test_the_assisting_tasks_end_with_a_rejected_case(stub, dispatch_stub, dispatch_nameko):
    incident = stub.Report(report_request(D1_GRID, category="0102"), metadata=officer(D1_GRID)).incident
    lead = task_where(dispatch_stub, wait_for(lambda: dispatch_stub.GetTask(
        pb.GetTaskRequest(incident_id=incident.id), metadata=ADMIN)).id, lambda t: t.status == "assigned")
    lead = dispatch_stub.AddAssist(pb.AssistRequest(task_id=lead.id, department_code="CG-STREET", reason="help",
                                                    expected_version=lead.version), metadata=DISPATCHER)
    helper = lead.assists[0]
    err = call_error(dispatch_stub.RequestProcedure, pb.ProcedureRequest(
        task_id=helper.id, procedure="return", reason="not ours", expected_version=helper.version),
        metadata=department("CG-STREET"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "released" in err.details()
    dispatch_stub.Reject(pb.RejectRequest(task_id=lead.id, reason="private courtyard", expected_version=lead.version),
                         metadata=DISPATCHER)
    assert task_where(dispatch_stub, helper.id, lambda t: t.status == "released")
    assert incident_where(stub, incident.id, lambda i: i.status == ipb.STATUS_REJECTED and not i.assisting)
