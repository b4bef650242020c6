"""Locate, LocateMany and ReportPosition through the real gRPC server: the datum of a point,
LocateMany's limit, and each point's own answer."""
import math

import grpc
import pytest

from demo.city import grid_cells
from gridbus.common.v1 import geo_pb2
from gridbus.grid.v1 import grid_pb2 as pb
from services.grid.domain import MAX_LOCATE_MANY
from shared import datum
from tests.conftest import CITY
from tests.grid.test_grpc_members import as_member, new_member
from tests.grid.test_grpc_units import ADMIN, call_error
from tests.support import metadata, token

OFFICER = metadata(token("officer", "330102001001001"))

# Two grids side by side: west | east along lon = BORDER. A phone 100 m west of the border stands
# in the west grid; its GCJ-02 or BD-09 coordinates, read as WGS 84, lie hundreds of metres east.
_cells = {code: (w, s, e, n) for code, w, s, e, n in grid_cells(CITY)}
WEST, EAST = "330102001001001", "330102001001003"
BORDER = _cells[WEST][2]
assert _cells[EAST][0] == BORDER
HERE = (BORDER - 0.001, (_cells[WEST][1] + _cells[WEST][3]) / 2)
AS_GCJ02 = datum.wgs84_to_gcj02(*HERE)
AS_BD09 = datum.wgs84_to_bd09(*HERE)


def locate(stub, lon, lat, d=geo_pb2.DATUM_UNSPECIFIED):
    return stub.Locate(pb.LocateRequest(lon=lon, lat=lat, datum=d), metadata=OFFICER)


def test_a_point_is_pinned_in_its_own_datum_and_the_answer_says_where_that_is_in_wgs84(grid_stub):
    assert locate(grid_stub, *HERE).grid.code == WEST
    for sent, d in ((AS_GCJ02, geo_pb2.DATUM_GCJ02), (AS_BD09, geo_pb2.DATUM_BD09)):
        reply = locate(grid_stub, *sent, d)
        assert reply.grid.code == WEST
        assert (reply.wgs84.lon, reply.wgs84.lat) == pytest.approx(HERE, abs=1e-7)
        assert locate(grid_stub, *sent).grid.code == EAST  # the same numbers read as WGS 84
    wgs = locate(grid_stub, *HERE, geo_pb2.DATUM_WGS84)
    cgcs = locate(grid_stub, *HERE, geo_pb2.DATUM_CGCS2000)
    assert (wgs.wgs84.lon, wgs.wgs84.lat) == (cgcs.wgs84.lon, cgcs.wgs84.lat) == HERE


def test_an_unknown_datum_is_invalid_argument(grid_stub):
    err = call_error(grid_stub.Locate, pb.LocateRequest(lon=HERE[0], lat=HERE[1], datum=9), OFFICER)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "datum 9" in err.details()


def test_locate_many_answers_each_point_in_order_with_its_own_status(grid_stub):
    code, w, s, e, n = grid_cells(CITY)[7]
    points = [
        geo_pb2.GeoPoint(lon=(w + e) / 2, lat=(s + n) / 2),
        geo_pb2.GeoPoint(lon=AS_GCJ02[0], lat=AS_GCJ02[1], datum=geo_pb2.DATUM_GCJ02),
        geo_pb2.GeoPoint(lon=math.nan, lat=30.1),
        geo_pb2.GeoPoint(lon=200.0, lat=30.1),
        geo_pb2.GeoPoint(lon=10.0, lat=10.0),
        geo_pb2.GeoPoint(lon=HERE[0], lat=HERE[1], datum=9),
        geo_pb2.GeoPoint(lon=AS_BD09[0], lat=AS_BD09[1], datum=geo_pb2.DATUM_BD09),
        geo_pb2.GeoPoint(lon=BORDER, lat=HERE[1]),  # on the shared border: the lower code
    ]
    results = grid_stub.LocateMany(pb.LocateManyRequest(points=points), metadata=OFFICER).results
    ok, invalid, not_found = (grpc.StatusCode.OK.value[0], grpc.StatusCode.INVALID_ARGUMENT.value[0],
                              grpc.StatusCode.NOT_FOUND.value[0])
    assert [r.code for r in results] == [ok, ok, invalid, invalid, not_found, invalid, ok, ok]
    assert [r.grid_code for r in results] == [code, WEST, "", "", "", "", WEST, WEST]
    assert "finite" in results[2].message and "out of range" in results[3].message
    assert "outside every grid" in results[4].message and "datum" in results[5].message
    assert all(r.message == "" for r in results if r.code == ok)
    for converted in (results[1], results[6]):  # sent in GCJ-02, BD-09: where they are in WGS 84
        assert (converted.wgs84.lon, converted.wgs84.lat) == pytest.approx(HERE, abs=1e-7)
    assert [i for i, r in enumerate(results) if r.HasField("wgs84")] == [1, 6]


def test_locate_many_takes_up_to_its_limit_and_refuses_more_whole(grid_stub):
    code, w, s, e, n = grid_cells(CITY)[0]
    point = geo_pb2.GeoPoint(lon=(w + e) / 2, lat=(s + n) / 2)
    full = grid_stub.LocateMany(pb.LocateManyRequest(points=[point] * MAX_LOCATE_MANY), metadata=OFFICER)
    assert len(full.results) == MAX_LOCATE_MANY and {r.grid_code for r in full.results} == {code}
    err = call_error(grid_stub.LocateMany, pb.LocateManyRequest(points=[point] * (MAX_LOCATE_MANY + 1)), OFFICER)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and f"at most {MAX_LOCATE_MANY}" in err.details()
    assert list(grid_stub.LocateMany(pb.LocateManyRequest(), metadata=OFFICER).results) == []


def test_locate_many_needs_a_caller(grid_stub):
    err = call_error(grid_stub.LocateMany, pb.LocateManyRequest(points=[geo_pb2.GeoPoint(lon=120.1, lat=30.1)]), None)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_position_sent_in_gcj02_is_stored_in_wgs84_and_kept_as_sent(grid_stub):
    m = grid_stub.AssignMember(pb.AssignMemberRequest(member_id=new_member(grid_stub).id, grid_code=WEST), metadata=ADMIN)
    me = as_member(m, "officer", WEST)
    reply = grid_stub.ReportPosition(pb.ReportPositionRequest(member_id=m.id, lon=AS_GCJ02[0], lat=AS_GCJ02[1],
                                                              datum=geo_pb2.DATUM_GCJ02), metadata=me)
    assert reply.grid_code == WEST
    stored = grid_stub.GetMember(pb.GetMemberRequest(id=m.id), metadata=ADMIN).last_position
    for position in (reply.position, stored):
        assert (position.lon, position.lat) == pytest.approx(HERE, abs=1e-7)
        assert (position.as_sent.lon, position.as_sent.lat, position.as_sent.datum) == (*AS_GCJ02, geo_pb2.DATUM_GCJ02)
    plain = grid_stub.ReportPosition(pb.ReportPositionRequest(member_id=m.id, lon=HERE[0], lat=HERE[1]), metadata=me)
    assert plain.position.as_sent.datum == geo_pb2.DATUM_WGS84 and plain.grid_code == WEST
    err = call_error(grid_stub.ReportPosition, pb.ReportPositionRequest(member_id=m.id, lon=HERE[0], lat=HERE[1],
                                                                        datum=7), me)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
