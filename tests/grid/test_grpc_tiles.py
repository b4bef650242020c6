"""GetTile: map tiles of the hierarchy through the real gRPC server, cut by PostGIS."""
import math

import grpc
import pytest

from demo.city import grid_cells
from gridbus.grid.v1 import grid_pb2 as pb
from tests.conftest import CITY
from tests.support import metadata, token

ADMIN = metadata(token("admin", CITY.city_code))
DISTRICT, OTHER_DISTRICT = "330102", "330103"


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2 ** z
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


def get_tile(grid_stub, md, z, x, y) -> pb.Tile:
    return grid_stub.GetTile(pb.GetTileRequest(z=z, x=x, y=y), metadata=md)


def test_a_close_tile_draws_every_level_down_to_the_grids(grid_stub):
    code, w, s, e, n = grid_cells(CITY)[0]
    tile = get_tile(grid_stub, ADMIN, *tile_of((w + e) / 2, (s + n) / 2, 12))
    assert list(tile.levels) == [pb.LEVEL_CITY, pb.LEVEL_DISTRICT, pb.LEVEL_STREET, pb.LEVEL_COMMUNITY, pb.LEVEL_GRID]
    # MVT keeps string properties as UTF-8: the grid's code and name are in the tile.
    assert code.encode() in tile.mvt and b"units" in tile.mvt and b"labels" in tile.mvt


def test_a_far_tile_draws_only_the_coarse_levels(grid_stub):
    tile = get_tile(grid_stub, ADMIN, *tile_of(120.2, 30.15, 6))
    assert list(tile.levels) == [pb.LEVEL_CITY]
    assert CITY.city_code.encode() in tile.mvt
    assert b"330102001" not in tile.mvt


def test_a_dispatcher_sees_only_its_own_district(grid_stub):
    dispatcher = metadata(token("dispatcher", DISTRICT))
    z, x, y = tile_of(120.2, 30.15, 9)
    assert OTHER_DISTRICT.encode() in get_tile(grid_stub, ADMIN, z, x, y).mvt
    tile = get_tile(grid_stub, dispatcher, z, x, y)
    assert DISTRICT.encode() in tile.mvt
    assert OTHER_DISTRICT.encode() not in tile.mvt and CITY.city_code.encode() not in tile.mvt
    # far out, the district is still drawn: it is the dispatcher's coarsest level
    assert list(get_tile(grid_stub, dispatcher, *tile_of(120.1, 30.15, 5)).levels) == [pb.LEVEL_DISTRICT]


def test_a_tile_away_from_the_city_is_empty(grid_stub):
    assert get_tile(grid_stub, ADMIN, *tile_of(10.0, 10.0, 12)).mvt == b""


def test_bad_tiles_and_callers_are_refused(grid_stub):
    with pytest.raises(grpc.RpcError) as info:
        get_tile(grid_stub, ADMIN, 3, 8, 0)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "0..7" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        get_tile(grid_stub, metadata(token("department", DISTRICT, member_id="sanitation")), 9, 426, 210)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
