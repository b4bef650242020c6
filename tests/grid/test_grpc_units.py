"""GridService units and Locate through the real gRPC server on PostGIS."""
import json
import math

import grpc
import pytest

from demo.city import grid_cells
from gridbus.grid.v1 import grid_pb2 as pb
from tests.conftest import CITY
from tests.support import metadata, token

ADMIN = metadata(token("admin", CITY.city_code))
DISTRICT = "330102"
OTHER_DISTRICT = "330103"
GRID = "330102001001001"


def call_error(fn, request, md) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(request, metadata=md)
    return info.value


def test_locate_returns_the_leaf_grid_and_its_ancestors(grid_stub):
    code, w, s, e, n = grid_cells(CITY)[5]
    reply = grid_stub.Locate(pb.LocateRequest(lon=(w + e) / 2, lat=(s + n) / 2), metadata=ADMIN)
    assert reply.grid.code == code
    assert reply.grid.level == pb.LEVEL_GRID
    assert list(reply.grid.ancestor_codes) == ["330100", code[:6], code[:9], code[:12]]


def test_every_grid_centre_locates_to_its_own_grid(grid_stub):
    officer = metadata(token("officer", GRID))  # locating needs a caller, not a scope
    for code, w, s, e, n in grid_cells(CITY):
        assert grid_stub.Locate(pb.LocateRequest(lon=(w + e) / 2, lat=(s + n) / 2), metadata=officer).grid.code == code


def test_a_point_on_a_shared_border_resolves_to_the_lowest_code_every_time(grid_stub):
    cells = grid_cells(CITY)
    a, w, _, e, n = cells[0]  # grids 001 and 002 share the border lat = n
    b = cells[1][0]
    assert b > a
    answers = {grid_stub.Locate(pb.LocateRequest(lon=(w + e) / 2, lat=n), metadata=ADMIN).grid.code
               for _ in range(5)}
    assert answers == {a}
    # the corner where four grids meet, too
    corner = grid_stub.Locate(pb.LocateRequest(lon=e, lat=n), metadata=ADMIN).grid.code
    assert corner == a


def test_a_point_outside_every_grid_is_not_found(grid_stub):
    err = call_error(grid_stub.Locate, pb.LocateRequest(lon=10.0, lat=10.0), ADMIN)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "outside every grid" in err.details()


@pytest.mark.parametrize("lon, lat, word", [
    (math.nan, 30.1, "finite"), (120.1, math.inf, "finite"), (-math.inf, 30.1, "finite"),
    (180.5, 30.1, "out of range"), (120.1, -90.01, "out of range"),
])
def test_malformed_coordinates_are_invalid_argument(grid_stub, lon, lat, word):
    err = call_error(grid_stub.Locate, pb.LocateRequest(lon=lon, lat=lat), ADMIN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert word in err.details()


def test_no_token_is_unauthenticated_and_a_forged_one_too(grid_stub):
    err = call_error(grid_stub.Locate, pb.LocateRequest(lon=120.1, lat=30.1), None)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    from shared.auth import generate_key, mint_token
    forged = mint_token("x", "admin", ["330100"], key=generate_key("dev-token"))  # the right key id, another key
    err = call_error(grid_stub.Locate, pb.LocateRequest(lon=120.1, lat=30.1), metadata(forged))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    expired = mint_token("x", "admin", ["330100"], ttl_seconds=-10)
    err = call_error(grid_stub.Locate, pb.LocateRequest(lon=120.1, lat=30.1), metadata(expired))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "expired" in err.details()


def test_get_unit_with_geometry(grid_stub):
    unit = grid_stub.GetUnit(pb.GetUnitRequest(code=DISTRICT, include_geometry=True), metadata=ADMIN)
    assert unit.level == pb.LEVEL_DISTRICT and unit.parent_code == "330100"
    geometry = json.loads(unit.geometry_geojson)
    assert geometry["type"] == "MultiPolygon"
    assert unit.area_m2 > 1e8  # 0.2 x 0.3 degrees near 30N is several hundred km2


def test_unknown_and_malformed_unit_codes(grid_stub):
    err = call_error(grid_stub.GetUnit, pb.GetUnitRequest(code="330109"), ADMIN)
    assert err.code() == grpc.StatusCode.NOT_FOUND and "330109" in err.details()
    err = call_error(grid_stub.GetUnit, pb.GetUnitRequest(code="33A1"), ADMIN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_list_children(grid_stub):
    reply = grid_stub.ListChildren(pb.ListChildrenRequest(code="330102001001"), metadata=ADMIN)
    assert [u.code for u in reply.units] == [f"330102001001{i:03d}" for i in range(1, 5)]


def test_dispatcher_reads_only_its_district(grid_stub):
    dispatcher = metadata(token("dispatcher", DISTRICT))
    assert grid_stub.GetUnit(pb.GetUnitRequest(code=GRID), metadata=dispatcher).code == GRID
    err = call_error(grid_stub.GetUnit, pb.GetUnitRequest(code=OTHER_DISTRICT + "001"), dispatcher)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(grid_stub.ListChildren, pb.ListChildrenRequest(code="330100"), dispatcher)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_officer_reads_only_its_own_grids(grid_stub):
    officer = metadata(token("officer", GRID))
    assert grid_stub.GetUnit(pb.GetUnitRequest(code=GRID), metadata=officer).code == GRID
    err = call_error(grid_stub.GetUnit, pb.GetUnitRequest(code="330102001001002"), officer)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def _square(code, name, w, s, e, n):
    return {"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}}


def test_import_through_grpc_is_admin_only_and_idempotent(grid_stub):
    # A new city far from the test city, imported twice: the second time nothing changes.
    doc = {"type": "FeatureCollection", "features": [
        _square("350100", "Coast City", 119.0, 26.0, 119.2, 26.2),
        _square("350102", "Coast District", 119.0, 26.0, 119.2, 26.2)]}
    body = json.dumps(doc).encode()
    err = call_error(grid_stub.ImportUnits, pb.ImportUnitsRequest(feature_collection_geojson=body),
                     metadata(token("dispatcher", "350102")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(grid_stub.ImportUnits, pb.ImportUnitsRequest(feature_collection_geojson=body),
                     metadata(token("admin", "330100")))  # an admin of another city
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    coast_admin = metadata(token("admin", "350100"))
    first = grid_stub.ImportUnits(pb.ImportUnitsRequest(feature_collection_geojson=body), metadata=coast_admin)
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    again = grid_stub.ImportUnits(pb.ImportUnitsRequest(feature_collection_geojson=body), metadata=coast_admin)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    doc["features"][1]["properties"]["name"] = "Coast District (renamed)"
    renamed = grid_stub.ImportUnits(pb.ImportUnitsRequest(feature_collection_geojson=json.dumps(doc).encode()),
                                    metadata=coast_admin)
    assert (renamed.created, renamed.updated, renamed.unchanged) == (0, 1, 1)


def test_import_of_garbage_is_invalid_argument(grid_stub):
    err = call_error(grid_stub.ImportUnits, pb.ImportUnitsRequest(feature_collection_geojson=b"{not json"), ADMIN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "not JSON" in err.details()


def test_an_oversized_request_is_refused_by_size(grid_stub):
    from shared.grpc_support import MAX_MESSAGE_BYTES
    err = call_error(grid_stub.ImportUnits,
                     pb.ImportUnitsRequest(feature_collection_geojson=b" " * (MAX_MESSAGE_BYTES + 1)), ADMIN)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
