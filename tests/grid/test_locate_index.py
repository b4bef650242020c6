"""The in-memory index of the leaf grids against PostGIS on the same data: random points, points on
shared edges and shared vertices (the border rule), and lookups while an import swaps the index."""
import random
import threading
import time

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from demo.city import CityPlan, grid_cells
from gridbus.common.v1 import geo_pb2
from gridbus.grid.v1 import grid_pb2 as pb
from services.grid import operations as ops
from services.grid import store
from shared.db import engine, session_scope
from shared.spatial import NOWHERE, LiveIndex, PolygonIndex
from tests.conftest import CITY, SYSTEM
from tests.grid.cities import jittered, leaf_polygons
from tests.support import metadata, token

# 2 x 2 x 2 x (4 x 4) = 128 grids of four jittered corners each, west of the test city.
BORDERS = CityPlan(city_code="360100", name="Borders City", west=115.8, south=28.5, east=116.2, north=28.8,
                   grids_x=4, grids_y=4)
BORDERS_DOC = jittered(BORDERS, seed=7)
RINGS = leaf_polygons(BORDERS_DOC)
VERTICES = sorted({tuple(p) for ring in RINGS.values() for p in ring})
EDGES = sorted({(tuple(a), tuple(b)) for ring in RINGS.values() for a, b in zip(ring, ring[1:])})
# The test city's rectangles: straight borders, four grids to a corner.
CITY_CORNERS = sorted({(x, y) for _, w, s, e, n in grid_cells(CITY) for x in (w, e) for y in (s, n)})

# Re-cut three times while being looked up: the same codes, other shapes.
SWAPPED = CityPlan(city_code="360400", name="Swapped City", west=115.8, south=29.5, east=116.2, north=29.8,
                   grids_x=4, grids_y=4)

# grid.locate (grid migration 0003) is the rule written in SQL: ST_Covers, the lowest code.
_POSTGIS = text("""
    SELECT (SELECT code FROM grid.locate(p.x, p.y))
    FROM unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) WITH ORDINALITY AS p(x, y, i) ORDER BY p.i""")
_COVERING = text("""
    SELECT count(*) FROM grid.units
    WHERE level = 'grid' AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326))""")


def postgis(points) -> list[str | None]:
    """Locate by the rule itself, in PostGIS."""
    with session_scope() as s:
        return list(s.scalars(_POSTGIS, {"xs": [p[0] for p in points], "ys": [p[1] for p in points]}))


def from_memory(index: PolygonIndex, points) -> list[str | None]:
    lons, lats = np.array(points, dtype=float).reshape(-1, 2).T
    return [index.keys[at] if at != NOWHERE else None for at in index.positions(lons, lats)]


@pytest.fixture(scope="module")
def borders_city(environment, city):
    ops.import_units(SYSTEM, BORDERS_DOC)
    return PolygonIndex(ops.leaf_grid_rows())


def test_every_vertex_and_edge_midpoint_locates_as_postgis_says(borders_city):
    midpoints = [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in EDGES]
    points = VERTICES + midpoints + CITY_CORNERS
    expected = postgis(points)
    assert from_memory(borders_city, points) == expected
    singles = [grid.code if (grid := borders_city.locate(x, y)) else None for x, y in points]
    assert singles == expected
    with session_scope() as s:  # and the sweep did exercise the border rule, many times
        shared = sum(1 for x, y in points if s.scalar(_COVERING, {"x": x, "y": y}) >= 2)
    assert shared > 300


def _on_edge(edge_and_t):
    (a, b), t = edge_and_t
    return a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])


POINT = st.one_of(
    st.tuples(st.floats(BORDERS.west - 0.01, BORDERS.east + 0.01), st.floats(BORDERS.south - 0.01, BORDERS.north + 0.01)),
    st.sampled_from(VERTICES),
    st.tuples(st.sampled_from(EDGES), st.floats(0.0, 1.0)).map(_on_edge),
    st.sampled_from(CITY_CORNERS),
    st.tuples(st.floats(CITY.west, CITY.east), st.floats(CITY.south, CITY.north)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=st.lists(POINT, min_size=1, max_size=40))
def test_random_border_and_vertex_points_locate_as_postgis_says(borders_city, points):
    assert from_memory(borders_city, points) == postgis(points)


def _probes(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(rng.uniform(SWAPPED.west, SWAPPED.east), rng.uniform(SWAPPED.south, SWAPPED.north)) for _ in range(n)]


@pytest.fixture(scope="module")
def swapped_city(environment, city):
    ops.import_units(SYSTEM, jittered(SWAPPED, seed=1))
    return _probes(300, seed=11)


def _recut(seed: int, probes) -> tuple[list, list]:
    """Imports another cut of the swapped city; the probes' answers before and after, by PostGIS."""
    before = postgis(probes)
    ops.import_units(SYSTEM, jittered(SWAPPED, seed=seed))
    after = postgis(probes)
    assert sum(a != b for a, b in zip(before, after)) > 50  # the cut really moved many probes
    return before, after


def test_lookups_while_the_index_is_rebuilt_see_the_old_one_or_the_new_one_never_a_mix(environment, swapped_city):
    probes = swapped_city
    rebuilding = threading.Event()

    def slow_build(build, rows):
        """As a big city would: lookups have plenty of time to run against the old index."""
        rebuilding.set()
        time.sleep(0.5)
        index = build(rows)
        rebuilding.clear()
        return index

    dsn = engine().url.set(drivername="postgresql").render_as_string(hide_password=False)
    live = LiveIndex(ops.leaf_grid_rows, dsn, store.LEAF_GRIDS_CHANNEL, offload=slow_build, name="test").start()
    seen: list[tuple[bool, tuple]] = []
    stop = threading.Event()

    def look():
        while not stop.is_set():
            during = rebuilding.is_set()
            seen.append((during, tuple(from_memory(live.current, probes))))

    lookers = [threading.Thread(target=look) for _ in range(2)]
    try:
        for t in lookers:
            t.start()
        before, after = _recut(seed=2, probes=probes)
        deadline = time.monotonic() + 30
        while live.generation < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)  # a few more lookups on the new index
    finally:
        stop.set()
        for t in lookers:
            t.join()
        live.stop()
    assert live.generation == 2, "the commit's NOTIFY did not rebuild the index"
    answers = {answer for _, answer in seen}
    assert answers <= {tuple(before), tuple(after)}
    assert tuple(after) in answers and tuple(before) in answers
    assert sum(1 for during, _ in seen if during) > 10  # lookups did run while it was being rebuilt


def test_the_grid_server_answers_from_the_new_cut_after_an_import_and_fails_nothing_meanwhile(grid_stub, swapped_city):
    probes = swapped_city
    md = metadata(token("officer", "360400001001001"))
    request = pb.LocateManyRequest(points=[geo_pb2.GeoPoint(lon=x, lat=y) for x, y in probes])

    def answers():
        return tuple(r.grid_code or None for r in grid_stub.LocateMany(request, metadata=md).results)

    current = tuple(postgis(probes))
    deadline = time.monotonic() + 30
    while answers() != current:  # the server may still be taking in an earlier cut
        assert time.monotonic() < deadline, "the grid server never caught up with the stored grids"
        time.sleep(0.1)

    seen, errors, stop = [], [], threading.Event()
    code, w, s, e, n = grid_cells(CITY)[0]

    def look():
        while not stop.is_set():
            try:
                seen.append(answers())
                single = grid_stub.Locate(pb.LocateRequest(lon=(w + e) / 2, lat=(s + n) / 2), metadata=md)
                assert single.grid.code == code
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(exc)

    lookers = [threading.Thread(target=look) for _ in range(2)]
    for t in lookers:
        t.start()
    try:
        before, after = _recut(seed=3, probes=probes)
        deadline = time.monotonic() + 30
        while (not seen or seen[-1] != tuple(after)) and time.monotonic() < deadline and not errors:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in lookers:
            t.join()
    assert not errors
    assert set(seen) <= {tuple(before), tuple(after)}
    assert seen[-1] == tuple(after)
