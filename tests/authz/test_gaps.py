"""The authorization gaps a security review found, each closed, on the real servers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from gridbus.dispatch.v1 import dispatch_pb2 as dpb
from gridbus.grid.v1 import grid_pb2 as gpb
from gridbus.incidents.v1 import incidents_pb2 as ipb
from shared.db import session_scope
from sqlalchemy import text
from tests.authz.matrix import CITY, DISTRICT_A, DISTRICT_B, GRID_A, GRID_A2, GRID_B
from tests.incidents.conftest import report_request
from tests.incidents.test_report import call_error
from tests.support import metadata, token

CITY_ADMIN = metadata(token("admin", CITY, member_id="city-admin"))
ADMIN_A = metadata(token("admin", DISTRICT_A, member_id="admin-a"))
ADMIN_B = metadata(token("admin", DISTRICT_B, member_id="admin-b"))
DISPATCHER_A = metadata(token("dispatcher", DISTRICT_A, member_id="dispatcher-a"))
DISPATCHER_B = metadata(token("dispatcher", DISTRICT_B, member_id="dispatcher-b"))
DENIED = grpc.StatusCode.PERMISSION_DENIED


def denied(fn, request, who):
    return call_error(fn, request, metadata=who).code() == DENIED


# --- grid: members belong to a district -----------------------------------------------------------

def test_an_admin_cannot_update_or_deactivate_a_member_of_another_district(grpc_stubs, world):
    grid = grpc_stubs["grid"]
    member = world.member("gap-update", GRID_B)
    for change in (dict(name="renamed"), dict(active=False), dict(phone="13911112222")):
        assert denied(grid.UpdateMember, gpb.UpdateMemberRequest(id=member, **change), ADMIN_A), change
    assert grid.GetMember(gpb.GetMemberRequest(id=member), metadata=CITY_ADMIN).active
    # The member's own district's admin may.
    assert not grid.UpdateMember(gpb.UpdateMemberRequest(id=member, active=False), metadata=ADMIN_B).active


def test_an_admin_cannot_assign_another_districts_member_into_their_grids(grpc_stubs, world):
    grid = grpc_stubs["grid"]
    member = world.member("gap-assign", GRID_B)
    assert denied(grid.AssignMember, gpb.AssignMemberRequest(member_id=member, grid_code=GRID_A), ADMIN_A)
    got = grid.GetMember(gpb.GetMemberRequest(id=member), metadata=CITY_ADMIN)
    assert [a.grid_code for a in got.assignments] == [GRID_B]
    # A member assigned nowhere yet may be taken in; a citywide admin assigns across districts.
    fresh = world.member("gap-assign-fresh", GRID_B)
    grid.ReleaseMember(gpb.ReleaseMemberRequest(member_id=fresh, grid_code=GRID_B), metadata=ADMIN_B)
    assert grid.AssignMember(gpb.AssignMemberRequest(member_id=fresh, grid_code=GRID_A), metadata=ADMIN_A).assignments
    moved = grid.AssignMember(gpb.AssignMemberRequest(member_id=member, grid_code=GRID_A2), metadata=CITY_ADMIN)
    assert {a.grid_code for a in moved.assignments} == {GRID_B, GRID_A2}


# --- dispatch: rules, figures, merges -------------------------------------------------------------

def _rule(grid_code: str, category: str, department: str = "CG-SANITATION") -> dpb.CreateRuleRequest:
    return dpb.CreateRuleRequest(rule=dpb.Rule(category_prefix=category, grid_code=grid_code, department_code=department,
                                               ack_minutes=30, resolve_minutes=60))


def test_dispatch_rules_an_admin_writes_only_in_their_district_and_citywide_rules_need_a_citywide_admin(
        grpc_stubs, world):
    dispatch = grpc_stubs["dispatch"]
    assert denied(dispatch.CreateRule, _rule("", "9701"), ADMIN_A)           # anywhere: citywide
    assert denied(dispatch.CreateRule, _rule(DISTRICT_B, "9702"), ADMIN_A)   # another district
    own = dispatch.CreateRule(_rule(DISTRICT_A, "9703"), metadata=ADMIN_A)
    citywide = dispatch.CreateRule(_rule("", "9704"), metadata=CITY_ADMIN)
    assert denied(dispatch.DeactivateRule, dpb.DeactivateRuleRequest(id=citywide.id), ADMIN_A)
    assert denied(dispatch.DeactivateRule, dpb.DeactivateRuleRequest(id=own.id), ADMIN_B)
    dispatch.DeactivateRule(dpb.DeactivateRuleRequest(id=own.id), metadata=ADMIN_A)
    dispatch.DeactivateRule(dpb.DeactivateRuleRequest(id=citywide.id), metadata=CITY_ADMIN)
    # Departments too: serving another district, or taking over one that does.
    dept = dpb.Department(code="GAP-B", name="gap", serves=[DISTRICT_B])
    assert denied(dispatch.UpsertDepartment, dpb.UpsertDepartmentRequest(department=dept), ADMIN_A)
    dispatch.UpsertDepartment(dpb.UpsertDepartmentRequest(department=dept), metadata=ADMIN_B)
    takeover = dpb.Department(code="GAP-B", name="mine now", serves=[DISTRICT_A])
    assert denied(dispatch.UpsertDepartment, dpb.UpsertDepartmentRequest(department=takeover), ADMIN_A)


def test_citywide_evaluation_needs_a_citywide_caller(grpc_stubs, world):
    dispatch = grpc_stubs["dispatch"]
    req = dpb.EvaluationRequest(group_by="district")
    now = datetime.now(timezone.utc)
    getattr(req, "from").FromDatetime(now - timedelta(days=1))
    req.to.FromDatetime(now + timedelta(minutes=1))
    assert denied(dispatch.GetEvaluation, req, ADMIN_A)
    assert dispatch.GetEvaluation(req, metadata=CITY_ADMIN).rows
    req.unit_code = DISTRICT_A
    assert {r.key for r in dispatch.GetEvaluation(req, metadata=ADMIN_A).rows} <= {DISTRICT_A, "all"}
    req.unit_code = DISTRICT_B
    assert denied(dispatch.GetEvaluation, req, ADMIN_A)
    # A department reads its own figures only.
    req.unit_code, req.department_code = "", "CG-SANITATION"
    assert denied(dispatch.GetEvaluation, req, metadata(token("department", CITY, member_id="CG-STREET")))


def test_merge_checks_the_target_cases_scope(grpc_stubs, world, stub):
    dispatch = grpc_stubs["dispatch"]
    task_id, _ = world.task("gap-merge")
    _, foreign_incident = world.task("gap-merge-target", GRID_B)
    task = dispatch.GetTask(dpb.GetTaskRequest(task_id=task_id), metadata=DISPATCHER_A)
    merge = dpb.MergeRequest(task_id=task_id, into_incident_id=foreign_incident, expected_version=task.version)
    assert denied(dispatch.Merge, merge, DISPATCHER_A)
    assert dispatch.GetTask(dpb.GetTaskRequest(task_id=task_id), metadata=DISPATCHER_A).status == task.status
    # The same in incidents, where a dispatcher merges a duplicate report.
    dispatcher_a = token("dispatcher", DISTRICT_A, member_id="gap-dispatcher-a")
    mine = stub.Report(report_request(GRID_A), metadata=metadata(token("officer", GRID_A, member_id="gap-o1"))).incident
    theirs = stub.Report(report_request(GRID_B), metadata=metadata(token("officer", GRID_B, member_id="gap-o2"))).incident
    req = ipb.TransitionRequest(incident_id=mine.id, action=ipb.ACTION_MERGE, expected_version=mine.version,
                                duplicate_of=theirs.id, note="same thing")
    assert call_error(stub.Transition, req, metadata=metadata(dispatcher_a)).code() == DENIED
    assert stub.GetIncident(ipb.GetIncidentRequest(incident_id=mine.id),
                            metadata=metadata(dispatcher_a)).incident.status == mine.status


def test_dispatch_and_reroute_need_a_known_active_department_serving_the_grid(stub, world):
    officer = metadata(token("officer", GRID_A, member_id="gap-officer"))
    who = metadata(token("dispatcher", DISTRICT_A, member_id="gap-dispatcher"))
    world.department()  # AUTHZ-A serves district A
    with session_scope() as s:
        s.execute(text("INSERT INTO dispatch.departments (code, name, serves, contact, active) "
                       "VALUES ('GAP-GONE', 'gone', '{330100}', '', false), ('GAP-B-ONLY', 'b', '{330103}', '', true) "
                       "ON CONFLICT (code) DO NOTHING"))
    incident = stub.Report(report_request(GRID_A), metadata=officer).incident

    def dispatch(code, action=ipb.ACTION_DISPATCH, version=None, **kw):
        return stub.Transition(ipb.TransitionRequest(incident_id=incident.id, action=action, department_code=code,
                                                     expected_version=version or incident.version, **kw),
                               metadata=who)

    for code, status in (("NO-SUCH-DEPT", grpc.StatusCode.NOT_FOUND), ("GAP-GONE", grpc.StatusCode.NOT_FOUND),
                         ("GAP-B-ONLY", grpc.StatusCode.FAILED_PRECONDITION)):
        assert call_error(dispatch, code).code() == status, code
    sent = dispatch("AUTHZ-A")
    assert sent.department_code == "AUTHZ-A"
    for code, status in (("NO-SUCH-DEPT", grpc.StatusCode.NOT_FOUND), ("GAP-B-ONLY", grpc.StatusCode.FAILED_PRECONDITION)):
        err = call_error(dispatch, code, ipb.ACTION_REROUTE, sent.version, note="wrong team")
        assert err.code() == status, code
    assert dispatch("CG-SANITATION", ipb.ACTION_REROUTE, sent.version, note="wrong team").department_code == \
        "CG-SANITATION"


@pytest.fixture(scope="module")
def stub(incidents_server):
    from gridbus.incidents.v1 import incidents_pb2_grpc
    with grpc.insecure_channel(f"127.0.0.1:{incidents_server}") as channel:
        yield incidents_pb2_grpc.IncidentServiceStub(channel)


# --- credit: people's credit is read within one's grids; failed lookups are logged and limited -----

def _id_number(serial: int) -> str:
    from services.credit import domain
    born = datetime(1990, 1, 1) + timedelta(days=serial)
    body = f"330102{born:%Y%m%d}001"
    return body + domain._ID_CHECK[sum(int(d) * w for d, w in zip(body, domain._ID_WEIGHTS)) % 11]


def test_credit_reads_of_people_are_scoped_and_failed_lookups_are_logged_and_limited(credit):
    from gridbus.credit.v1 import credit_pb2 as cpb
    from services.credit import lookups
    from services.credit import operations as credit_ops
    from tests.conftest import SYSTEM
    person_a = credit_ops.register(SYSTEM, type_="person", code=_id_number(1), name="A", registered_grid=GRID_A)
    person_b = credit_ops.register(SYSTEM, type_="person", code=_id_number(2), name="B", registered_grid=GRID_B)
    nowhere = credit_ops.register(SYSTEM, type_="person", code=_id_number(3), name="C")
    for role in ("dispatcher", "admin", "department"):
        who = metadata(token(role, DISTRICT_A, member_id=f"credit-{role}"))
        for read in (lambda s: credit.GetSubject(cpb.GetSubjectRequest(subject_id=s, purpose="case 1"), metadata=who),
                     lambda s: credit.GetStanding(cpb.GetStandingRequest(subject_id=s, purpose="case 1"), metadata=who),
                     lambda s: credit.ListRecords(cpb.ListRecordsRequest(subject_id=s, purpose="case 1"), metadata=who)):
            read(person_a.id)
            for other in (person_b.id, nowhere.id):  # another district's; registered nowhere: citywide only
                with pytest.raises(grpc.RpcError) as info:
                    read(other)
                assert info.value.code() == DENIED, role
    citywide = metadata(token("dispatcher", CITY, member_id="credit-citywide"))
    assert credit.GetSubject(cpb.GetSubjectRequest(subject_id=nowhere.id, purpose="case 1"), metadata=citywide).id

    # Guessing numbers: each miss is logged with the masked number asked for, until the limit.
    guesser = metadata(token("dispatcher", DISTRICT_A, member_id="credit-guesser"))
    for serial in range(100, 100 + lookups.FAILED_LOOKUPS_ALLOWED):
        err = call_error(credit.GetSubject, cpb.GetSubjectRequest(id_number=_id_number(serial), purpose="guess"),
                         metadata=guesser)
        assert err.code() == grpc.StatusCode.NOT_FOUND
    with session_scope() as s:
        logged = s.execute(text("SELECT subject_ref, purpose FROM credit.access_log WHERE reader_id = 'credit-guesser' "
                                "AND what = 'failed lookup' ORDER BY id")).all()
    assert len(logged) == lookups.FAILED_LOOKUPS_ALLOWED
    assert all(r.subject_ref.startswith("subject: id ") and "NOT_FOUND" in r.subject_ref for r in logged)
    assert not any(_id_number(serial) in r.subject_ref for r, serial in zip(logged, range(100, 200)))
    err = call_error(credit.GetSubject, cpb.GetSubjectRequest(subject_id=person_a.id, purpose="case 1"),
                     metadata=guesser)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Out-of-scope reads are failures too, and others are not limited by the guesser's.
    with session_scope() as s:
        denied_reads = s.scalar(text("SELECT count(*) FROM credit.access_log WHERE reader_id = 'credit-dispatcher' "
                                     "AND what = 'failed lookup' AND subject_ref LIKE '%PERMISSION_DENIED'"))
    assert denied_reads == 6
    credit.GetSubject(cpb.GetSubjectRequest(subject_id=person_a.id, purpose="case 1"),
                      metadata=metadata(token("dispatcher", DISTRICT_A, member_id="credit-other")))


@pytest.fixture(scope="module")
def credit(environment):
    from gridbus.credit.v1 import credit_pb2_grpc
    from tests.support import service_process
    with service_process(environment, "credit", "grpc") as proc, \
            grpc.insecure_channel(f"127.0.0.1:{proc.port}") as channel:
        yield credit_pb2_grpc.CreditServiceStub(channel)
