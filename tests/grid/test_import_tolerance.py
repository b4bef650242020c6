"""The import's tolerance on geometry whose sizes are known to the centimetre: a city of
rectangles, each case moving an edge by a few tenths of a metre either side of the default
tolerance (0.5 m)."""
import copy
import json
import math
import re

import pytest
from sqlalchemy import text

from demo.city import CityPlan, build
from services.grid import domain
from services.grid import operations as ops
from shared.db import session_scope
from shared.errors import InvalidArgument
from tests.conftest import SYSTEM

# 2 districts x 2 streets x 2 communities x 4 grids. Community 510102001001 spans
# 104.0-104.1 E, 30.5-30.65 N; its grids: 001 SW, 002 NW, 003 SE, 004 NE, each 0.05 x 0.075 degrees.
PLAN = CityPlan(city_code="510100", name="Tolerance City", west=104.0, south=30.5, east=104.4, north=30.8)
COMMUNITY = "510102001001"
SW, NW, SE, NE = (f"{COMMUNITY}00{n}" for n in range(1, 5))
GRID_HEIGHT_M = 0.075 * (111132.954 - 559.822 * math.cos(math.radians(2 * 30.5375))
                         + 1.175 * math.cos(math.radians(4 * 30.5375)))


def degrees_east(metres: float, lat: float = 30.5375) -> float:
    return metres / (111412.84 * math.cos(math.radians(lat)) - 93.5 * math.cos(math.radians(3 * lat)))


@pytest.fixture
def city(environment):
    """The city as built, restored before each case."""
    doc = build(PLAN)
    ops.import_units(SYSTEM, doc)
    return doc


def feature(doc, code):
    return copy.deepcopy(next(f for f in doc["features"] if f["properties"]["code"] == code))


def collection(*features):
    return {"type": "FeatureCollection", "features": list(features)}


def move_edge(f, x_from: float, x_to: float):
    """Moves every vertex at longitude x_from to x_to."""
    for ring in f["geometry"]["coordinates"]:
        for pos in ring:
            if pos[0] == pytest.approx(x_from, abs=1e-12):
                pos[0] = x_to
    return f


def stored(code):
    with session_scope() as s:
        return s.execute(text("SELECT ST_AsText(geom) AS wkt, area_m2 FROM grid.units WHERE code = :c"),
                         {"c": code}).one()


def refused(doc, options=domain.ImportOptions()) -> str:
    with session_scope() as s:
        before = s.execute(text("SELECT md5(string_agg(code || ST_AsText(geom), ',' ORDER BY code)) "
                                "FROM grid.units WHERE code LIKE '5101%'")).scalar()
    with pytest.raises(InvalidArgument) as info:
        ops.import_units(SYSTEM, doc, None, options)
    with session_scope() as s:
        after = s.execute(text("SELECT md5(string_agg(code || ST_AsText(geom), ',' ORDER BY code)) "
                               "FROM grid.units WHERE code LIKE '5101%'")).scalar()
    assert after == before  # nothing written
    return info.value.message


def test_a_grid_sticking_out_of_its_community_by_less_than_the_tolerance_is_clipped(city):
    original = stored(SW)
    grid = move_edge(feature(city, SW), 104.0, 104.0 - degrees_east(0.3))
    result = ops.import_units(SYSTEM, collection(grid))
    [clipped] = result.adjustments
    assert (clipped.index, clipped.code, clipped.kind, clipped.other_code) == (0, SW, domain.CLIPPED, COMMUNITY)
    assert clipped.area_m2 == pytest.approx(0.3 * GRID_HEIGHT_M, rel=0.001)  # 0.3 m x 8.3 km
    assert stored(SW).area_m2 == pytest.approx(original.area_m2, rel=1e-9)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)  # clipped back to what was stored


def test_a_grid_sticking_out_beyond_the_tolerance_is_refused_with_its_size_and_the_part(city):
    grid = move_edge(feature(city, SW), 104.0, 104.0 - degrees_east(0.7))
    message = refused(collection(feature(city, NE), grid))
    assert message.startswith(f"feature 1 ({SW}): not inside its parent {COMMUNITY}: ")
    assert re.search(r"([0-9,.]+) m² lies outside it", message)
    assert float(re.search(r"lies outside it, reaching ([0-9.]+) m", message).group(1)) == pytest.approx(0.7, abs=0.01)
    area = float(re.search(r"([0-9,.]+) m² lies outside", message).group(1).replace(",", ""))
    assert area == pytest.approx(0.7 * GRID_HEIGHT_M, rel=0.001)
    assert "(tolerance 0.5 m)" in message
    part = json.loads(message.split("the part outside: ", 1)[1])
    assert part["type"] == "MultiPolygon"
    xs = [pos[0] for pos in part["coordinates"][0][0]]
    assert min(xs) == pytest.approx(104.0 - degrees_east(0.7), abs=1e-9) and max(xs) == pytest.approx(104.0, abs=1e-9)


def test_a_zero_tolerance_refuses_even_a_centimetre(city):
    grid = move_edge(feature(city, SW), 104.0, 104.0 - degrees_east(0.01))
    assert "not inside its parent" in refused(collection(grid), domain.ImportOptions(tolerance_m=0))
    bigger = ops.import_units(SYSTEM, collection(move_edge(feature(city, SW), 104.0, 104.0 - degrees_east(0.7))),
                              None, domain.ImportOptions(tolerance_m=1))
    assert [a.kind for a in bigger.adjustments] == [domain.CLIPPED]


def test_overlapping_siblings_leave_the_overlap_to_the_lower_code(city):
    # SE (003) reaches 0.3 m west into SW (001): SE, the higher code, gives the strip up.
    se = move_edge(feature(city, SE), 104.05, 104.05 - degrees_east(0.3))
    result = ops.import_units(SYSTEM, collection(feature(city, SW), se))
    [overlap] = result.adjustments
    assert (overlap.index, overlap.code, overlap.kind, overlap.other_code) == (1, SE, domain.OVERLAP, SW)
    assert overlap.area_m2 == pytest.approx(0.3 * GRID_HEIGHT_M, rel=0.001)
    assert stored(SE).wkt == "MULTIPOLYGON(((104.05 30.5,104.1 30.5,104.1 30.575,104.05 30.575,104.05 30.5)))"


def test_the_lower_code_keeps_the_overlap_even_when_it_is_the_one_that_moved(city):
    # SW (001) reaches 0.3 m east into SE (003): the strip stays with SW, SE loses it.
    sw_before, se_before = stored(SW).area_m2, stored(SE).area_m2
    sw = move_edge(feature(city, SW), 104.05, 104.05 + degrees_east(0.3))
    result = ops.import_units(SYSTEM, collection(sw, feature(city, SE)))
    [overlap] = result.adjustments
    assert (overlap.code, overlap.kind, overlap.other_code) == (SE, domain.OVERLAP, SW)
    assert stored(SW).area_m2 - sw_before == pytest.approx(0.3 * GRID_HEIGHT_M, rel=0.01)
    assert se_before - stored(SE).area_m2 == pytest.approx(0.3 * GRID_HEIGHT_M, rel=0.01)


def test_a_stored_sibling_outside_the_import_keeps_the_overlap(city):
    before = stored(SW)
    sw = move_edge(feature(city, SW), 104.05, 104.05 + degrees_east(0.3))
    result = ops.import_units(SYSTEM, collection(sw))
    [overlap] = result.adjustments
    assert (overlap.code, overlap.kind, overlap.other_code) == (SW, domain.OVERLAP, SE)
    assert stored(SW).area_m2 == pytest.approx(before.area_m2, rel=1e-9)  # given back: as before


def test_siblings_overlapping_beyond_the_tolerance_are_refused(city):
    sw = move_edge(feature(city, SW), 104.05, 104.05 + degrees_east(0.7))
    message = refused(collection(sw, feature(city, SE)))
    assert message.startswith(f"feature 1 ({SE}): overlaps its sibling {SW}: ")
    assert float(re.search(r"reaching ([0-9.]+) m into one of them", message).group(1)) == pytest.approx(0.7, abs=0.01)
    assert json.loads(message.split("the overlap: ", 1)[1])["type"] == "MultiPolygon"


def test_a_gap_narrower_than_the_tolerance_between_children_is_reported_on_the_parent(city):
    # The community and its grids, SW's west edge 0.3 m inside the community's: a 0.3 m gap, kept.
    before = stored(SW)
    sw = move_edge(feature(city, SW), 104.0, 104.0 + degrees_east(0.3))
    result = ops.import_units(SYSTEM, collection(feature(city, COMMUNITY), sw, feature(city, NW),
                                                 feature(city, SE), feature(city, NE)))
    [gap] = result.adjustments
    assert (gap.index, gap.code, gap.kind, gap.detail) == (0, COMMUNITY, domain.GAP, "1 gap(s)")
    assert gap.area_m2 == pytest.approx(0.3 * GRID_HEIGHT_M, rel=0.001)
    assert before.area_m2 - stored(SW).area_m2 == pytest.approx(0.3 * GRID_HEIGHT_M, rel=0.01)  # not filled


def test_a_wide_gap_is_an_area_without_grids_not_noise(city):
    sw = move_edge(feature(city, SW), 104.0, 104.0 + degrees_east(2.0))
    result = ops.import_units(SYSTEM, collection(feature(city, COMMUNITY), sw))
    assert result.adjustments == []


def test_a_part_narrower_than_the_tolerance_is_reported_as_a_sliver(city):
    sw = feature(city, SW)
    west, east, south, north = 104.0, 104.05, 30.5, 30.575
    strip_east, body_west = west + degrees_east(0.2), west + degrees_east(0.4)
    sw["geometry"] = {"type": "MultiPolygon", "coordinates": [
        [[[west, south], [strip_east, south], [strip_east, north], [west, north], [west, south]]],
        [[[body_west, south], [east, south], [east, north], [body_west, north], [body_west, south]]]]}
    result = ops.import_units(SYSTEM, collection(sw))
    [sliver] = result.adjustments
    assert (sliver.code, sliver.kind, sliver.detail) == (SW, domain.SLIVER, "1 part(s)")
    assert sliver.area_m2 == pytest.approx(0.2 * GRID_HEIGHT_M, rel=0.001)


def test_a_parent_may_shrink_from_its_stored_children_only_within_the_tolerance(city):
    near = move_edge(feature(city, COMMUNITY), 104.0, 104.0 + degrees_east(0.3))
    result = ops.import_units(SYSTEM, collection(near))
    assert (result.updated, result.adjustments) == (1, [])  # the stored grids are not changed
    far = move_edge(feature(city, COMMUNITY), 104.0, 104.0 + degrees_east(0.7))
    message = refused(collection(far))
    assert message.startswith(f"feature 0 ({COMMUNITY}): no longer contains its stored child {SW}: ")
    assert float(re.search(r"reaching ([0-9.]+) m from its border", message).group(1)) == pytest.approx(0.7, abs=0.01)


def test_an_invalid_ring_is_refused_unless_repair_is_asked_for(city):
    before = stored(SW)
    sw = feature(city, SW)
    w, s, e, n = 104.0, 30.5, 104.05, 30.575
    sw["geometry"]["coordinates"] = [[[w, s], [e, n], [e, s], [w, n], [w, s]]]  # a bow tie
    message = refused(collection(sw))
    assert message.startswith(f"feature 0 ({SW}): invalid polygon: Self-intersection[")
    assert message.endswith("(the repair option, --repair, repairs it and reports the repair)")
    result = ops.import_units(SYSTEM, collection(sw), None, domain.ImportOptions(repair=True))
    [repaired] = [a for a in result.adjustments if a.kind == domain.REPAIRED]
    assert repaired.code == SW and repaired.detail.startswith("Self-intersection[104.025 30.5375]")
    assert stored(SW).area_m2 == pytest.approx(before.area_m2 / 2, rel=0.001)  # the bow tie's two triangles


def test_a_long_offending_part_is_simplified_in_the_message_and_still_geojson(city):
    sw = feature(city, SW)
    circle = [[104.0 + 0.01 * math.cos(2 * math.pi * k / 3000), 30.54 + 0.01 * math.sin(2 * math.pi * k / 3000)]
              for k in range(3000)]
    sw["geometry"]["coordinates"] = [circle + [circle[0]]]  # half of it west of the community
    message = refused(collection(sw))
    assert len(message) < 3500  # inside gRPC's trailers, with room to spare
    head, part = message.split("the part outside: (simplified to ", 1)
    assert head.startswith(f"feature 0 ({SW}): not inside its parent {COMMUNITY}: ")
    simplified = json.loads(part.split("°) ", 1)[1])
    assert simplified["type"] == "MultiPolygon" and 4 < len(simplified["coordinates"][0][0]) < 300
