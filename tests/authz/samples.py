"""One real request per entry point, aimed at an object in district A (tests/authz/matrix.py)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from demo.city import grid_cells
from gridbus.dispatch.v1 import dispatch_pb2 as dpb
from gridbus.grid.v1 import grid_pb2 as gpb
from tests.authz.matrix import DISTRICT_A, GRID_A, GRID_A2, Sample
from tests.conftest import CITY as PLAN

_, _W, _S, _E, _N = next(c for c in grid_cells(PLAN) if c[0] == GRID_A)
LON, LAT = (_W + _E) / 2, (_S + _N) / 2


def _import(w):
    doc = {"type": "FeatureCollection", "features": [w.feature(GRID_A)]}
    return gpb.ImportUnitsRequest(feature_collection_geojson=json.dumps(doc).encode())


GRID_GRPC = {
    "Locate": Sample(lambda w: gpb.LocateRequest(lon=LON, lat=LAT)),
    "LocateMany": Sample(lambda w: gpb.LocateManyRequest(points=[{"lon": LON, "lat": LAT}])),
    "GetUnit": Sample(lambda w: gpb.GetUnitRequest(code=GRID_A), unit=GRID_A),
    "ListChildren": Sample(lambda w: gpb.ListChildrenRequest(code=GRID_A[:12]), unit=GRID_A[:12]),
    "ImportUnits": Sample(_import, unit=GRID_A),
    "CreateMember": Sample(lambda w: gpb.CreateMemberRequest(name="authz new", phone="13900000000",
                                                             role=gpb.ROLE_OFFICER)),
    "GetMember": Sample(lambda w: gpb.GetMemberRequest(id=w.member("read")), owner=lambda w: w.member("read"),
                        unit=GRID_A),
    "UpdateMember": Sample(lambda w: gpb.UpdateMemberRequest(id=w.member("update"), on_duty=False),
                           owner=lambda w: w.member("update"), unit=GRID_A),
    "AssignMember": Sample(lambda w: gpb.AssignMemberRequest(member_id=w.member("assign"), grid_code=GRID_A2)),
    "ReleaseMember": Sample(lambda w: gpb.ReleaseMemberRequest(member_id=w.member("release", GRID_A, GRID_A2),
                                                               grid_code=GRID_A2)),
    "ListMembers": Sample(lambda w: gpb.ListMembersRequest(grid_code=DISTRICT_A)),
    "ReportPosition": Sample(lambda w: gpb.ReportPositionRequest(member_id=w.member("position"), lon=LON, lat=LAT),
                             owner=lambda w: w.member("position"), unit=GRID_A),
    "GetTile": Sample(lambda w: gpb.GetTileRequest(z=10, x=853, y=418)),
}

GRID_RPC = {
    "locate": Sample(lambda w: {"lon": LON, "lat": LAT}),
    "get_unit": Sample(lambda w: {"code": GRID_A}, unit=GRID_A),
    "list_children": Sample(lambda w: {"code": GRID_A[:12]}, unit=GRID_A[:12]),
    "get_member": Sample(lambda w: {"member_id": w.member("read")}, owner=lambda w: w.member("read"), unit=GRID_A),
    "list_members": Sample(lambda w: {"grid_code": DISTRICT_A}),
}


def _task(name):
    return lambda w: w.task(name)[0]


def _dept(name):
    return lambda w: w.task_department(name)


def _evaluation(w):
    req = dpb.EvaluationRequest(unit_code=DISTRICT_A, department_code=w.task_department("evaluation"))
    now = datetime.now(timezone.utc)
    getattr(req, "from").FromDatetime(now - timedelta(days=1))
    req.to.FromDatetime(now)
    return req


DISPATCH_GRPC = {
    "UpsertDepartment": Sample(lambda w: dpb.UpsertDepartmentRequest(department=dpb.Department(
        code="AUTHZ-A", name="Authz district A", serves=[DISTRICT_A]))),
    "ListDepartments": Sample(lambda w: dpb.ListDepartmentsRequest()),
    "CreateRule": Sample(lambda w: dpb.CreateRuleRequest(rule=dpb.Rule(
        category_prefix="98", grid_code=DISTRICT_A, department_code=w.department(), ack_minutes=30,
        resolve_minutes=60))),
    "DeactivateRule": Sample(lambda w: dpb.DeactivateRuleRequest(id=w.rule("deactivate")),
                             unit=GRID_A[:9] + "001"),
    "ListRules": Sample(lambda w: dpb.ListRulesRequest()),
    "GetTask": Sample(lambda w: dpb.GetTaskRequest(task_id=_task("read")(w)), owner=_dept("read"), unit=GRID_A),
    "ListQueue": Sample(lambda w: dpb.ListQueueRequest(unit_code=DISTRICT_A, department_code=_dept("read")(w)),
                        owner=_dept("read")),
    "Assign": Sample(lambda w: dpb.AssignRequest(task_id=_task("assign")(w), department_code=w.department(),
                                                 expected_version=1), unit=GRID_A),
    "Reroute": Sample(lambda w: dpb.RerouteRequest(task_id=_task("reroute")(w), department_code=w.department(),
                                                   reason="authz", expected_version=1), unit=GRID_A),
    "Reject": Sample(lambda w: dpb.RejectRequest(task_id=_task("reject")(w), reason="authz", expected_version=1),
                     unit=GRID_A),
    "Merge": Sample(lambda w: dpb.MergeRequest(task_id=_task("merge")(w), into_incident_id=w.task("target")[1],
                                               expected_version=1), unit=GRID_A),
    "AddAssist": Sample(lambda w: dpb.AssistRequest(task_id=_task("assist")(w), department_code=w.department(),
                                                    reason="authz", expected_version=1), unit=GRID_A),
    "ReleaseAssist": Sample(lambda w: dpb.ReleaseAssistRequest(task_id=_task("release")(w), reason="authz",
                                                               expected_version=1), unit=GRID_A),
    "Acknowledge": Sample(lambda w: dpb.AcknowledgeRequest(task_id=_task("ack")(w), expected_version=1),
                          owner=_dept("ack"), unit=GRID_A),
    "ReportProgress": Sample(lambda w: dpb.ProgressRequest(task_id=_task("progress")(w), note="authz"),
                             owner=_dept("progress"), unit=GRID_A),
    "Resolve": Sample(lambda w: dpb.ResolveRequest(task_id=_task("resolve")(w), resolution="authz",
                                                   expected_version=1), owner=_dept("resolve"), unit=GRID_A),
    "RequestProcedure": Sample(lambda w: dpb.ProcedureRequest(task_id=_task("ask")(w), procedure="extension",
                                                              reason="authz", minutes=60, expected_version=1),
                               owner=_dept("ask"), unit=GRID_A),
    "DecideProcedure": Sample(lambda w: dpb.ProcedureDecision(task_id=_task("decide")(w), procedure="extension",
                                                              approve=True, reason="authz", expected_version=1),
                              unit=GRID_A),
    "GetEvaluation": Sample(_evaluation, owner=_dept("evaluation")),
}

DISPATCH_RPC = {
    "get_task": Sample(lambda w: {"task_id": _task("read")(w)}, owner=_dept("read"), unit=GRID_A),
    "request_procedure": Sample(lambda w: {"task_id": _task("ask-rpc")(w), "procedure": "extension",
                                           "reason": "authz", "expected_version": 1, "minutes": 60},
                                owner=_dept("ask-rpc"), unit=GRID_A),
    "decide_procedure": Sample(lambda w: {"task_id": _task("decide-rpc")(w), "procedure": "extension",
                                          "approve": True, "reason": "authz", "expected_version": 1},
                               unit=GRID_A),
}


# --- incidents ----------------------------------------------------------------------------------

from gridbus.credit.v1 import credit_pb2 as cpb  # noqa: E402
from gridbus.incidents.v1 import incidents_pb2 as ipb  # noqa: E402
from tests.authz.world import DEPARTMENT  # noqa: E402


def _report(w):
    req = ipb.ReportRequest(report_id=str(__import__("uuid").uuid4()), category_code="0102", title="authz",
                            description="authz", location=ipb.Location(lon=LON, lat=LAT, accuracy_m=5))
    req.occurred_at.GetCurrentTime()
    return req


def _transition(action, **kw):
    # expected_version 99: in scope it is ABORTED (or the state refuses it), out of scope refused first
    return lambda w: ipb.TransitionRequest(incident_id=w.incident("transition"), action=action, expected_version=99,
                                           **kw)


def _summary(w):
    req = ipb.SummarizeRequest(group_by="status", grid_code=DISTRICT_A)
    now = datetime.now(timezone.utc)
    req.reported_from.FromDatetime(now - timedelta(days=1))
    req.reported_to.FromDatetime(now + timedelta(minutes=1))
    return req


_DEPT = lambda w: DEPARTMENT  # noqa: E731
INCIDENTS_GRPC = {
    "Report": Sample(_report, unit=GRID_A),
    # A batch answers each report with its own result (a report out of scope: PERMISSION_DENIED there).
    "ReportBatch": Sample(_report, unit=GRID_A, filtered=frozenset({"officer"})),
    "GetIncident": Sample(lambda w: ipb.GetIncidentRequest(incident_id=w.incident("read")), owner=_DEPT, unit=GRID_A),
    # A department's list is its own cases: nothing it could ask for lies out of scope.
    "ListIncidents": Sample(lambda w: ipb.ListIncidentsRequest(grid_code=DISTRICT_A), filtered=frozenset({"department"})),
    "Summarize": Sample(_summary, filtered=frozenset({"department"})),
    "Transition": Sample(_transition(ipb.ACTION_UNPARK, note="authz"), owner=_DEPT, unit=GRID_A, by_role={
        "officer": _transition(ipb.ACTION_REOPEN, note="authz"), "dispatcher": _transition(ipb.ACTION_REOPEN, note="x"),
        "department": _transition(ipb.ACTION_ACCEPT)}),
    "Watch": Sample(lambda w: ipb.WatchRequest(grid_code=DISTRICT_A)),
    "ListCategories": Sample(lambda w: ipb.ListCategoriesRequest()),
}
INCIDENTS_RPC = {
    "get_incident": Sample(lambda w: {"incident_id": w.incident("read")}, owner=_DEPT, unit=GRID_A),
    "transition": Sample(lambda w: {"incident_id": w.incident("transition"), "action": "unpark", "expected_version": 99,
                                    "note": "authz"}, owner=_DEPT, unit=GRID_A, by_role={
        "officer": lambda w: {"incident_id": w.incident("transition"), "action": "reopen", "expected_version": 99,
                              "note": "authz"},
        "dispatcher": lambda w: {"incident_id": w.incident("transition"), "action": "reopen", "expected_version": 99,
                                 "note": "authz"},
        "department": lambda w: {"incident_id": w.incident("transition"), "action": "accept", "expected_version": 99}}),
}


# --- credit -------------------------------------------------------------------------------------

def _about(message, **kw):
    """A read of the person in grid A; of the enterprise for a role that reads nothing personal."""
    return dict(request=lambda w: message(subject_id=w.subject("person"), purpose="authz", **kw),
                not_personal=lambda w: message(subject_id=w.subject("enterprise"), purpose="authz", **kw), unit=GRID_A)


def _decision(w, authority="HB-ENV"):
    return cpb.ExternalRecord(authority=authority, decision_number=f"authz-{__import__('uuid').uuid4().hex[:8]}",
                              decision_date="2026-01-06", kind="penalty", subject_code="91330100MA2XXXXX1X",
                              subject_name="authz", legal_basis="authz", severity=3)


CREDIT_GRPC = {
    "RegisterSubject": Sample(lambda w: cpb.RegisterSubjectRequest(type="enterprise", code="bad", name="authz")),
    "GetSubject": Sample(**_about(cpb.GetSubjectRequest)),
    "ListRecords": Sample(**_about(cpb.ListRecordsRequest)),
    "GetStanding": Sample(**_about(cpb.GetStandingRequest)),
    "AddRecord": Sample(lambda w: cpb.AddRecordRequest(subject_id=w.subject("person"), kind="commendation",
                                                       category="authz", severity=4), unit=GRID_A),
    "ListMembers": Sample(lambda w: cpb.ListMembersRequest(list="red")),
    "VerifyChain": Sample(lambda w: cpb.VerifyChainRequest()),
    "ListUnmatched": Sample(lambda w: cpb.ListUnmatchedRequest(limit=5)),
    "AddExternalRecord": Sample(_decision, owner=lambda w: "HB-ENV"),
    # A stream's items are each checked against the sender's authority and refused one by one.
    "ImportRecords": Sample(_decision, owner=lambda w: "HB-ENV", filtered=frozenset({"department"})),
    "ApplyRepair": Sample(lambda w: cpb.ApplyRepairRequest(record_id=w.decision(), applicant="authz", evidence="authz",
                                                           corrected_on="2026-01-07"), owner=lambda w: "HB-ENV"),
    "DecideRepair": Sample(lambda w: cpb.DecideRepairRequest(application_id=str(__import__("uuid").uuid4()),
                                                             reason="authz")),
    "ListRepairs": Sample(lambda w: cpb.ListRepairsRequest(subject_id=w.subject("enterprise"))),
    "CheckRestriction": Sample(lambda w: cpb.CheckRestrictionRequest(uscc="91330100MA2XXXXX1X",
                                                                     action="public_procurement", purpose="authz")),
}
CREDIT_RPC = {
    "get_standing": Sample(lambda w: {"subject_id": w.subject("person"), "purpose": "authz"},
                           not_personal=lambda w: {"subject_id": w.subject("enterprise"), "purpose": "authz"},
                           unit=GRID_A),
}

GRPC = {"grid": GRID_GRPC, "dispatch": DISPATCH_GRPC, "incidents": INCIDENTS_GRPC, "credit": CREDIT_GRPC}
RPC = {"grid": GRID_RPC, "dispatch": DISPATCH_RPC, "incidents": INCIDENTS_RPC, "credit": CREDIT_RPC}


# --- emergencies, sensors, subscriptions ----------------------------------------------------------

from gridbus.emergencies.v1 import emergencies_pb2 as epb  # noqa: E402
from gridbus.sensors.v1 import sensors_pb2 as spb  # noqa: E402
from gridbus.subscriptions.v1 import subscriptions_pb2 as subpb  # noqa: E402

_ALERTED = lambda w: w.alert()[2]  # noqa: E731
EMERGENCIES_GRPC = {
    # A phone hears of the alerts sent to its own officer: there is nothing else to ask for.
    "WatchAlerts": Sample(lambda w: epb.WatchAlertsRequest(), filtered=frozenset({"officer"})),
    "Accept": Sample(lambda w: epb.AnswerRequest(alert_id=w.alert()[0]), owner=_ALERTED, unit=GRID_A),
    "Decline": Sample(lambda w: epb.AnswerRequest(alert_id=w.alert()[0], reason="authz"), owner=_ALERTED, unit=GRID_A),
    "GetAlert": Sample(lambda w: epb.GetAlertRequest(alert_id=w.alert()[0]), owner=_ALERTED, unit=GRID_A),
    "Suggest": Sample(lambda w: epb.SuggestRequest(incident_id=w.alert()[1]), unit=GRID_A),
}
SENSORS_GRPC = {
    "RegisterDevice": Sample(lambda w: spb.RegisterDeviceRequest(
        id="authz-registered", kind="smoke", lon=LON, lat=LAT, department_code="fire", alarm_map={"SMOKE": "04"}),
        unit=GRID_A),
    "ListDevices": Sample(lambda w: spb.ListDevicesRequest()),
    "DeactivateDevice": Sample(lambda w: spb.DeactivateDeviceRequest(id=w.device("deactivated")), unit=GRID_A),
    "ListSuspected": Sample(lambda w: spb.ListSuspectedRequest(limit=5)),
    "Confirm": Sample(lambda w: spb.DecideRequest(case_id=w.case()), unit=GRID_A),
    "Dismiss": Sample(lambda w: spb.DecideRequest(case_id=w.case(), reason="authz"), unit=GRID_A),
}
# An organisation's subscriptions are its own: its subscriber token names it (another, unregistered
# one is refused); an admin's organisations are those within their district.
_ORG = lambda w: w.organisation()  # noqa: E731
SUBSCRIPTIONS_GRPC = {
    "Subscribe": Sample(lambda w: subpb.SubscribeRequest(name="authz", patterns=["grid.#"]), owner=_ORG),
    "ListSubscriptions": Sample(lambda w: subpb.ListSubscriptionsRequest(), owner=_ORG),
    "Unsubscribe": Sample(lambda w: subpb.UnsubscribeRequest(name="authz-none"), owner=_ORG),
    "Replay": Sample(lambda w: subpb.ReplayRequest(name="authz-none"), owner=_ORG),
    "RegisterOrganisation": Sample(lambda w: subpb.RegisterOrganisationRequest(id="authz-org", name="authz",
                                                                               scope=[DISTRICT_A])),
    "ListOrganisations": Sample(lambda w: subpb.ListOrganisationsRequest(), filtered=frozenset({"admin"})),
}

GRPC.update(emergencies=EMERGENCIES_GRPC, sensors=SENSORS_GRPC, subscriptions=SUBSCRIPTIONS_GRPC)
