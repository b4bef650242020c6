"""grid.locate, the border rule written in SQL, and the two in-memory indexes that answer by it:
grid's (Locate) and incidents' (pinning a report) agree with it on every point, borders and
corners included (tests/grid/test_locate_index.py and tests/incidents/test_pinning.py compare
them on many more points)."""
from sqlalchemy import text

from demo.city import grid_cells
from services.grid import operations as grid_ops
from services.incidents.operations import pinning
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


def _sql(session, lon, lat):
    row = session.execute(text("SELECT code, lineage FROM grid.locate(:lon, :lat)"), {"lon": lon, "lat": lat}).first()
    return (row.code, list(row.lineage)) if row else None


def test_grid_incidents_and_grid_locate_pin_every_point_to_the_same_grid(city):
    locate = _grid_locate()
    with session_scope() as session:
        for lon, lat in _points():
            unit = locate(lon, lat)
            assert _sql(session, lon, lat) == pinning.pin(session, lon, lat) == (unit.code, lineage(unit.code))


def test_a_corner_goes_to_the_lowest_of_the_grids_that_meet_there(city):
    cells = grid_cells(CITY)
    code, _, _, e, n = cells[0]
    with session_scope() as session:
        meeting = session.execute(text(
            "SELECT code FROM grid.units WHERE level = 'grid' "
            "AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) ORDER BY code"),
            {"lon": e, "lat": n}).scalars().all()
        assert len(meeting) > 1 and meeting[0] == code
        assert _sql(session, e, n)[0] == pinning.pin(session, e, n)[0] == _grid_locate()(e, n).code == code


def test_outside_every_grid_none_pins(city):
    with session_scope() as session:
        assert _grid_locate()(10.0, 10.0) is None
        assert _sql(session, 10.0, 10.0) is None
        assert pinning.pin(session, 10.0, 10.0) is None
