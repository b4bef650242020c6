"""Importing grid units from GeoJSON: the CLI on 10,000 grids, and each kind of bad feature."""
import copy
import json
import subprocess

import pytest
from sqlalchemy import text

from demo.city import CityPlan, build
from services.grid import operations as ops
from shared.db import session_scope
from shared.errors import InvalidArgument
from tests.conftest import SYSTEM
from tests.support import ROOT, python

# 4 x 5 x 5 x (10 x 10) = 10,000 grids, east of the test city.
BIG = CityPlan(city_code="440300", name="Big City", west=121.0, south=30.0, east=122.0, north=31.0,
               districts=4, streets=5, communities=5, grids_x=10, grids_y=10)
# A small city of its own for the error cases, so their rejections are checked against real neighbours.
SMALL = CityPlan(city_code="320500", name="Small City", west=118.0, south=31.0, east=118.4, north=31.3)


def count(prefix: str) -> int:
    with session_scope() as s:
        return s.execute(text("SELECT count(*) FROM grid.units WHERE code LIKE :p"), {"p": prefix + "%"}).scalar()


def gridbus_cli(*args, stdin: str | None = None, env=None):
    return subprocess.run(python("-m", "services.cli", *args), cwd=ROOT, input=stdin, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_imports_ten_thousand_grids_in_one_go_and_again_changes_nothing(environment, tmp_path):
    path = tmp_path / "big.geojson"
    path.write_text(json.dumps(build(BIG)))
    first = gridbus_cli("grid", "import", str(path), env=environment)
    assert first.returncode == 0, first.stderr
    assert "created 10125, updated 0, unchanged 0" in first.stdout
    assert "10125/10125" in first.stderr  # the progress bar reached the end
    with session_scope() as s:
        leaves = s.execute(text("SELECT count(*) FROM grid.units WHERE level = 'grid' AND code LIKE '4403%'")).scalar()
    assert leaves == BIG.grid_count == 10_000
    again = gridbus_cli("grid", "import", "-", stdin=path.read_text(), env=environment)
    assert again.returncode == 0, again.stderr
    assert "created 0, updated 0, unchanged 10125" in again.stdout


@pytest.fixture(scope="module")
def small_city(environment):
    ops.import_units(SYSTEM, build(SMALL))
    return build(SMALL)


def _feature(doc, code):
    return next(f for f in doc["features"] if f["properties"]["code"] == code)


def _expect_refused(doc, *words):
    before = count("3205")
    with pytest.raises(InvalidArgument) as info:
        ops.import_units(SYSTEM, doc)
    for word in words:
        assert word in info.value.message
    assert count("3205") == before  # nothing half-written
    return info.value.message


def test_a_self_intersecting_polygon_is_refused_with_index_and_reason(small_city):
    doc = copy.deepcopy(small_city)
    doc["features"][-1]["properties"]["name"] = "renamed, but the import will fail"
    bowtie = [[118.0, 31.0], [118.05, 31.0375], [118.05, 31.0], [118.0, 31.0375], [118.0, 31.0]]
    doc["features"][7]["geometry"]["coordinates"] = [bowtie]
    message = _expect_refused(doc, "feature 7", "invalid polygon", "Self-intersection")
    assert doc["features"][7]["properties"]["code"] in message
    with session_scope() as s:  # the valid rename in the same file was not written either
        name = s.execute(text("SELECT name FROM grid.units WHERE code = :c"),
                         {"c": doc["features"][-1]["properties"]["code"]}).scalar()
    assert name != "renamed, but the import will fail"


def test_a_child_outside_its_parent_is_refused(small_city):
    doc = {"type": "FeatureCollection", "features": [copy.deepcopy(_feature(small_city, "320502001001001"))]}
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    for pos in ring:
        pos[0] -= 0.5  # moved west, out of its community
    _expect_refused(doc, "feature 0", "not inside its parent 320502001001")


def test_overlapping_siblings_are_refused(small_city):
    doc = {"type": "FeatureCollection", "features": [copy.deepcopy(_feature(small_city, "320502001001001"))]}
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    ring[1][0] += 0.01  # grows east into grid 003
    ring[2][0] += 0.01
    _expect_refused(doc, "feature 0", "overlaps its sibling 320502001001003")


def test_a_parent_shrunk_away_from_its_stored_children_is_refused(small_city):
    doc = {"type": "FeatureCollection", "features": [copy.deepcopy(_feature(small_city, "320502001001"))]}
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    ring[2][1] -= 0.01
    ring[3][1] -= 0.01
    _expect_refused(doc, "no longer contains its stored child")


def test_a_missing_parent_is_refused(small_city):
    doc = {"type": "FeatureCollection", "features": [copy.deepcopy(_feature(small_city, "320502001001001"))]}
    doc["features"][0]["properties"]["code"] = "320502009001001"
    _expect_refused(doc, "parent 320502009001 is neither stored nor in the import")


@pytest.mark.parametrize("mutate, words", [
    (lambda f: f["properties"].update(code="32050200100100A"), ["feature 0", "digits only"]),
    (lambda f: f["properties"].update(level="street"), ["is a grid, but level says 'street'"]),
    (lambda f: f["properties"].update(name=""), ["name must be"]),
    (lambda f: f.update(geometry={"type": "Point", "coordinates": [118.0, 31.0]}), ["Polygon or MultiPolygon"]),
    (lambda f: f["geometry"]["coordinates"][0].pop(), ["end where it starts"]),
    (lambda f: f["geometry"]["coordinates"][0][1].__setitem__(1, float("nan")), ["finite"]),
])
def test_malformed_features_name_their_index(small_city, mutate, words):
    doc = {"type": "FeatureCollection", "features": [copy.deepcopy(_feature(small_city, "320502001001001"))]}
    mutate(doc["features"][0])
    _expect_refused(doc, *words)


def test_the_cli_reports_a_bad_file_and_exits_non_zero(environment, small_city, tmp_path):
    doc = {"type": "FeatureCollection", "features": [copy.deepcopy(_feature(small_city, "320502001001001"))]}
    doc["features"][0]["properties"]["code"] = "320502009001001"
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(doc))
    result = gridbus_cli("grid", "import", str(path), env=environment)
    assert result.returncode != 0
    assert "INVALID_ARGUMENT" in result.stderr and "feature 0" in result.stderr
