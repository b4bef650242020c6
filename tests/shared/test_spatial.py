"""The in-memory polygon index on its own: PostGIS's covers rule and the lowest key on a border.
No server; tests/grid/test_locate_index.py compares it with PostGIS itself."""
import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.spatial import NOWHERE, PolygonIndex


def box_row(key, w, s, e, n, record=None):
    return key, record or key, shapely.to_wkb(shapely.box(w, s, e, n))


# A 3 x 3 board of unit squares; keys run column by column, so "c0r0" < "c0r1" < ... < "c2r2".
BOARD = [box_row(f"c{i}r{j}", i, j, i + 1, j + 1) for i in range(3) for j in range(3)]


def test_a_point_inside_one_polygon_gets_it():
    index = PolygonIndex(BOARD)
    assert index.locate(1.5, 2.5) == "c1r2"
    assert index.locate(0.001, 0.999) == "c0r0"


def test_borders_and_corners_go_to_the_lowest_key_whatever_the_order_of_the_rows():
    index = PolygonIndex(list(reversed(BOARD)))
    assert index.locate(1.0, 0.5) == "c0r0"      # c0r0 | c1r0
    assert index.locate(1.5, 2.0) == "c1r1"      # c1r1 / c1r2
    assert index.locate(2.0, 2.0) == "c1r1"      # corner of c1r1, c1r2, c2r1, c2r2
    assert index.locate(3.0, 3.0) == "c2r2"      # the outer corner: covered, boundary included


def test_outside_every_polygon_is_nowhere():
    index = PolygonIndex(BOARD)
    assert index.locate(3.000001, 1.0) is None
    assert index.position(-5.0, -5.0) == NOWHERE
    assert PolygonIndex([]).locate(0.5, 0.5) is None
    assert list(PolygonIndex([]).positions([0.5], [0.5])) == [NOWHERE]


def test_holes_and_multipolygons():
    ring = shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], holes=[[(1, 1), (3, 1), (3, 3), (1, 3)]])
    islands = shapely.MultiPolygon([shapely.box(1, 1, 3, 3), shapely.box(10, 10, 11, 11)])
    index = PolygonIndex([("b-ring", "ring", shapely.to_wkb(ring)), ("a-islands", "islands", shapely.to_wkb(islands))])
    assert index.locate(0.5, 0.5) == "ring"
    assert index.locate(2.0, 2.0) == "islands"     # in the hole: only the island covers it
    assert index.locate(1.0, 2.0) == "islands"     # the hole's edge: both cover it, "a-islands" < "b-ring"
    assert index.locate(10.5, 10.5) == "islands"
    assert index.locate(5.0, 5.0) is None


def test_records_travel_with_their_keys():
    index = PolygonIndex([box_row("k2", 1, 0, 2, 1, {"name": "two"}), box_row("k1", 0, 0, 1, 1, {"name": "one"})])
    assert index.keys == ["k1", "k2"]
    assert index.locate(0.5, 0.5) == {"name": "one"} and index.locate(1.5, 0.5) == {"name": "two"}


coordinate = st.one_of(st.floats(-0.5, 3.5), st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(coordinate, coordinate), min_size=1, max_size=60))
def test_many_points_at_once_answer_as_one_by_one_and_as_the_rule_says(points):
    index = PolygonIndex(BOARD)
    lons, lats = np.array(points).T
    many = index.positions(lons, lats)
    for (lon, lat), at in zip(points, many):
        assert at == index.position(lon, lat)
        covering = [k for k, _, wkb in BOARD if shapely.covers(shapely.from_wkb(wkb), shapely.Point(lon, lat))]
        assert (index.keys[at] if at != NOWHERE else None) == (min(covering) if covering else None)


def test_threads_may_query_a_fresh_index_at_once():
    """GEOS's prepared polygons crashed the process here ("double free or corruption") within a
    few rounds; the index's plain polygons and pre-built tree must not."""
    import threading
    rows = [(f"k{i:02d}{j:02d}", None, shapely.to_wkb(shapely.Point(i, j).buffer(0.7, quad_segs=64)))
            for i in range(30) for j in range(30)]
    rng = np.random.default_rng(0)
    lons, lats = rng.uniform(0, 30, 2000), rng.uniform(0, 30, 2000)
    for _ in range(20):
        index = PolygonIndex(rows)
        start, answers = threading.Barrier(4), {}

        def look(n):
            start.wait()
            if n % 2:
                answers[n] = [int(at) for k in range(0, 2000, 50) for at in index.positions(lons[k:k + 50], lats[k:k + 50])]
            else:
                answers[n] = [index.position(x, y) for x, y in zip(lons, lats)]

        threads = [threading.Thread(target=look, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answers) == 4 and all(a == answers[0] for a in answers.values())
