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
