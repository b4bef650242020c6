"""grid.locate, the border rule's one source: incidents' pinning calls it, and grid's Locate
(its in-memory index) agrees with it on every point, borders and corners included
(tests/grid/test_locate_index.py compares the two on many more points)."""
from sqlalchemy import text

from demo.city import grid_cells
from services.grid import operations as grid_ops
from services.incidents import store as incidents_store
from shared.db import session_scope
from shared.spatial import PolygonIndex
from shared.units import lineage
from tests.conftest import CITY


def _points():
    for code, w, s, e, n in grid_cells(CITY):
        yield (w + e) / 2, (s + n) / 2  # the centre
        yield (w + e) / 2, n            # the northern border
        yield e, (s + n) / 2            # the eastern border
        yield e, n                      # the north-eastern corner


def _grid_locate():
    """What grid's Locate answers from: the index of the leaf grids as stored now."""
    return PolygonIndex(grid_ops.leaf_grid_rows()).locate


def test_grid_and_incidents_pin_every_point_to_the_same_grid(city):
    locate = _grid_locate()
    with session_scope() as session:
        for lon, lat in _points():
            unit = locate(lon, lat)
            assert incidents_store.locate_grid(session, lon, lat) == (unit.code, lineage(unit.code))


def test_a_corner_goes_to_the_lowest_of_the_grids_that_meet_there(city):
    cells = grid_cells(CITY)
    code, _, _, e, n = cells[0]
    with session_scope() as session:
        meeting = session.execute(text(
            "SELECT code FROM grid.units WHERE level = 'grid' "
            "AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) ORDER BY code"),
            {"lon": e, "lat": n}).scalars().all()
        assert len(meeting) > 1 and meeting[0] == code
        assert incidents_store.locate_grid(session, e, n)[0] == _grid_locate()(e, n).code == code


def test_outside_every_grid_neither_pins(city):
    with session_scope() as session:
        assert _grid_locate()(10.0, 10.0) is None
        assert incidents_store.locate_grid(session, 10.0, 10.0) is None
