"""Grid members through the real gRPC server: registry, assignments, duty, positions, who may."""
import grpc
import pytest

from gridbus.grid.v1 import grid_pb2 as pb
from tests.grid.test_grpc_units import ADMIN, DISTRICT, GRID, OTHER_DISTRICT, call_error
from tests.support import metadata, token

GRID_B = "330102001001002"
FAR_GRID = OTHER_DISTRICT + "001001001"


def new_member(stub, role=pb.ROLE_OFFICER, phone="13812345678", name="Li Wei"):
    return stub.CreateMember(pb.CreateMemberRequest(name=name, phone=phone, role=role), metadata=ADMIN)


def as_member(member: pb.Member, role: str, *scope: str):
    return metadata(token(role, *scope, member_id=member.id))


def test_create_get_and_mask_the_phone_for_others(grid_stub):
    m = new_member(grid_stub)
    assert m.phone == "13812345678" and m.role == pb.ROLE_OFFICER and m.active and not m.on_duty
    grid_stub.AssignMember(pb.AssignMemberRequest(member_id=m.id, grid_code=GRID), metadata=ADMIN)
    seen_by_dispatcher = grid_stub.GetMember(pb.GetMemberRequest(id=m.id), metadata=metadata(token("dispatcher", DISTRICT)))
    assert seen_by_dispatcher.phone == "138****5678"
    seen_by_self = grid_stub.GetMember(pb.GetMemberRequest(id=m.id), metadata=as_member(m, "officer", GRID))
    assert seen_by_self.phone == "13812345678"


def test_first_assignment_is_primary_and_a_new_primary_replaces_it(grid_stub):
    m = new_member(grid_stub)
    m = grid_stub.AssignMember(pb.AssignMemberRequest(member_id=m.id, grid_code=GRID), metadata=ADMIN)
    assert [(a.grid_code, a.primary) for a in m.assignments] == [(GRID, True)]
    m = grid_stub.AssignMember(pb.AssignMemberRequest(member_id=m.id, grid_code=GRID_B, primary=True), metadata=ADMIN)
    assert {(a.grid_code, a.primary) for a in m.assignments} == {(GRID, False), (GRID_B, True)}
    # releasing the primary hands it to the remaining assignment
    m = grid_stub.ReleaseMember(pb.ReleaseMemberRequest(member_id=m.id, grid_code=GRID_B), metadata=ADMIN)
    assert [(a.grid_code, a.primary) for a in m.assignments] == [(GRID, True)]
    err = call_error(grid_stub.ReleaseMember, pb.ReleaseMemberRequest(member_id=m.id, grid_code=GRID_B), ADMIN)
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_assignment_level_must_fit_the_role(grid_stub):
    officer = new_member(grid_stub)
    err = call_error(grid_stub.AssignMember, pb.AssignMemberRequest(member_id=officer.id, grid_code=DISTRICT), ADMIN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "officer is assigned to a grid" in err.details()
    dispatcher = new_member(grid_stub, role=pb.ROLE_DISPATCHER)
    d = grid_stub.AssignMember(pb.AssignMemberRequest(member_id=dispatcher.id, grid_code=DISTRICT), metadata=ADMIN)
    assert d.assignments[0].grid_code == DISTRICT


def test_unknown_grid_unknown_member_and_bad_input(grid_stub):
    m = new_member(grid_stub)
    err = call_error(grid_stub.AssignMember, pb.AssignMemberRequest(member_id=m.id, grid_code="330102001001099"), ADMIN)
    assert err.code() == grpc.StatusCode.NOT_FOUND and "330102001001099" in err.details()
    err = call_error(grid_stub.GetMember, pb.GetMemberRequest(id="00000000-0000-0000-0000-000000000000"), ADMIN)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = call_error(grid_stub.GetMember, pb.GetMemberRequest(id="not-a-uuid"), ADMIN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = call_error(grid_stub.CreateMember, pb.CreateMemberRequest(name="X", phone="12ab", role=pb.ROLE_OFFICER), ADMIN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "phone" in err.details()
    err = call_error(grid_stub.CreateMember, pb.CreateMemberRequest(name="X", phone="13800000000"), ADMIN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "role" in err.details()


def test_only_admins_manage_members_within_their_scope(grid_stub):
    m = new_member(grid_stub)
    dispatcher = metadata(token("dispatcher", DISTRICT))
    err = call_error(grid_stub.CreateMember, pb.CreateMemberRequest(name="X", phone="13800000000", role=pb.ROLE_OFFICER), dispatcher)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(grid_stub.AssignMember, pb.AssignMemberRequest(member_id=m.id, grid_code=GRID), dispatcher)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    district_admin = metadata(token("admin", OTHER_DISTRICT))
    err = call_error(grid_stub.AssignMember, pb.AssignMemberRequest(member_id=m.id, grid_code=GRID), district_admin)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not grid_stub.GetMember(pb.GetMemberRequest(id=m.id), metadata=ADMIN).assignments  # nothing was written


def test_update_with_versions_and_self_service_duty(grid_stub):
    m = grid_stub.AssignMember(pb.AssignMemberRequest(member_id=new_member(grid_stub).id, grid_code=GRID), metadata=ADMIN)
    renamed = grid_stub.UpdateMember(pb.UpdateMemberRequest(id=m.id, name="Li Wei Jr", expected_version=m.version), metadata=ADMIN)
    assert renamed.name == "Li Wei Jr" and renamed.version == m.version + 1
    err = call_error(grid_stub.UpdateMember, pb.UpdateMemberRequest(id=m.id, name="Stale", expected_version=m.version), ADMIN)
    assert err.code() == grpc.StatusCode.ABORTED and str(renamed.version) in err.details()
    me = as_member(m, "officer", GRID)
    on = grid_stub.UpdateMember(pb.UpdateMemberRequest(id=m.id, on_duty=True), metadata=me)
    assert on.on_duty
    err = call_error(grid_stub.UpdateMember, pb.UpdateMemberRequest(id=m.id, name="Me"), me)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    other = metadata(token("officer", GRID, member_id="11111111-1111-1111-1111-111111111111"))
    err = call_error(grid_stub.UpdateMember, pb.UpdateMemberRequest(id=m.id, on_duty=False), other)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    off = grid_stub.UpdateMember(pb.UpdateMemberRequest(id=m.id, active=False), metadata=ADMIN)
    assert not off.active and not off.on_duty  # deactivating also takes them off duty
    err = call_error(grid_stub.AssignMember, pb.AssignMemberRequest(member_id=m.id, grid_code=GRID_B), ADMIN)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_list_members_of_a_subtree_with_pagination(grid_stub):
    community = "330102002002"
    ids = set()
    for i in range(5):
        m = new_member(grid_stub, name=f"Officer {i}")
        grid_stub.AssignMember(pb.AssignMemberRequest(member_id=m.id, grid_code=f"{community}{i % 4 + 1:03d}"), metadata=ADMIN)
        ids.add(m.id)
    seen, page_token, pages = set(), "", 0
    while True:
        reply = grid_stub.ListMembers(pb.ListMembersRequest(grid_code=community, page_size=2, page_token=page_token),
                                      metadata=ADMIN)
        seen |= {m.id for m in reply.members}
        pages += 1
        page_token = reply.next_page_token
        if not page_token:
            break
    assert seen == ids and pages == 3
    dispatcher = metadata(token("dispatcher", DISTRICT))
    assert len(grid_stub.ListMembers(pb.ListMembersRequest(grid_code=community), metadata=dispatcher).members) == 5
    err = call_error(grid_stub.ListMembers, pb.ListMembersRequest(grid_code=community), metadata(token("dispatcher", OTHER_DISTRICT)))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(grid_stub.ListMembers, pb.ListMembersRequest(grid_code=community, page_token="bogus"), ADMIN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_report_position_only_for_oneself(grid_stub):
    m = grid_stub.AssignMember(pb.AssignMemberRequest(member_id=new_member(grid_stub).id, grid_code=GRID), metadata=ADMIN)
    me = as_member(m, "officer", GRID)
    reply = grid_stub.ReportPosition(pb.ReportPositionRequest(member_id=m.id, lon=120.01, lat=30.01), metadata=me)
    assert reply.grid_code == GRID and reply.position.lon == pytest.approx(120.01)
    stored = grid_stub.GetMember(pb.GetMemberRequest(id=m.id), metadata=ADMIN)
    assert (stored.last_position.lon, stored.last_position.lat) == pytest.approx((120.01, 30.01))
    outside = grid_stub.ReportPosition(pb.ReportPositionRequest(member_id=m.id, lon=1.0, lat=1.0), metadata=me)
    assert outside.grid_code == ""  # outside every grid is still a position worth knowing
    err = call_error(grid_stub.ReportPosition, pb.ReportPositionRequest(member_id=m.id, lon=120.0, lat=30.0), ADMIN)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(grid_stub.ReportPosition, pb.ReportPositionRequest(member_id=m.id, lon=float("nan"), lat=30.0), me)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
