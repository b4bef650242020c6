"""Importing a city on real boundaries: four urban districts of Shijiazhuang as published, cut
into streets, communities and 1,944 grids by clipping (demo/realcity.py), with the noise every
real boundary file has. Then the files cities have: Shapefile and GeoPackage in CGCS2000
Gauss-Krüger zones with Chinese attribute names, through the CLI, and ImportUnits over gRPC."""
import copy
import json
import re
from types import SimpleNamespace

import grpc
import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
import shapely.affinity
from shapely.geometry import shape
from sqlalchemy import text

from demo.realcity import RealCityPlan, build, load_counties
from gridbus.grid.v1 import grid_pb2 as pb
from services.grid import domain
from services.grid import operations as ops
from shared.db import session_scope
from shared.health import wait_until
from shared.errors import InvalidArgument
from shared.units import parent_of
from tests.conftest import SYSTEM
from tests.grid.test_import import gridbus_cli
from tests.support import metadata, token

URBAN = ("130102", "130104", "130105", "130108")  # 长安区, 桥西区, 新华区, 裕华区: they share borders
M2_PER_DEGREE2 = 111_320 ** 2 * 0.788  # near enough at 38° N, for sizes only


def units_fingerprint() -> str:
    with session_scope() as s:
        return s.execute(text("SELECT count(*) || ':' || coalesce(md5(string_agg(code || name || ST_AsText(geom), ',' "
                              "ORDER BY code)), '') FROM grid.units WHERE code LIKE '1301%'")).scalar()


@pytest.fixture(scope="module")
def real_city(environment):
    doc = build(RealCityPlan(counties=URBAN))
    with pytest.raises(InvalidArgument) as strict:
        ops.import_units(SYSTEM, doc, None, domain.ImportOptions(tolerance_m=0))
    after_strict = units_fingerprint()
    first = ops.import_units(SYSTEM, doc)
    again = ops.import_units(SYSTEM, doc)
    return SimpleNamespace(doc=doc, strict=strict.value.message, after_strict=after_strict, first=first, again=again)


def geojson_after(message: str, label: str) -> dict:
    """The GeoJSON an error message ends with (maybe after a note that it was simplified)."""
    tail = message.split(label, 1)[1]
    return json.loads(tail.split(") ", 1)[1] if tail.startswith("(") else tail)


def features_under(doc, prefix):
    return [copy.deepcopy(f) for f in doc["features"] if f["properties"]["code"].startswith(prefix)]


def test_the_generated_city_has_the_noise_of_real_boundary_files(real_city):
    shapes = {f["properties"]["code"]: shape(f["geometry"]) for f in real_city.doc["features"]}
    grids = [c for c in shapes if len(c) == 15]
    assert len(grids) == 4 * 6 * 9 * 9
    outside = [shapely.difference(s, shapes[parent_of(c)]).area * M2_PER_DEGREE2
               for c, s in shapes.items() if parent_of(c) and not shapely.covered_by(s, shapes[parent_of(c)])]
    assert len(outside) > 1000  # half the children are "not covered by" their parent...
    assert max(outside) < 1e-4  # ...by less than a square centimetre


def test_the_strict_rule_refuses_it_as_before_and_writes_nothing(real_city):
    assert re.match(r"feature \d+ \(1301\d+\): not inside its parent 1301\d+: 0\.0 m² lies outside it, "
                    r"reaching 0\.00 m from its border \(tolerance 0 m\); the part outside: ", real_city.strict)
    assert real_city.after_strict == "0:"


def test_the_tolerance_imports_it_and_reports_each_adjustment(real_city):
    first = real_city.first
    assert (first.created, first.updated, first.unchanged) == (len(real_city.doc["features"]), 0, 0)
    kinds = {a.kind for a in first.adjustments}
    assert domain.CLIPPED in kinds and kinds <= {domain.CLIPPED, domain.OVERLAP, domain.GAP, domain.SLIVER}
    assert max(a.area_m2 for a in first.adjustments) < 0.01
    index = {f["properties"]["code"]: i for i, f in enumerate(real_city.doc["features"])}
    for a in first.adjustments:
        assert index[a.code] == a.index
        if a.kind == domain.CLIPPED:
            assert a.other_code == parent_of(a.code)


def test_importing_it_again_changes_nothing(real_city):
    again = real_city.again
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(real_city.doc["features"]))
    assert again.adjustments == real_city.first.adjustments


def _located_in(lon: float, lat: float, code: str) -> None:
    found = ops.locate(SYSTEM, lon, lat).grid.code
    if found != code:
        raise AssertionError(f"({lon}, {lat}) is in {found}, not yet {code}")


def test_points_inside_real_grids_locate_to_them(real_city):
    with session_scope() as s:
        samples = s.execute(text("SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p "
                                 "FROM grid.units WHERE level = 'grid' AND code LIKE '1301%' ORDER BY code) g "
                                 "WHERE code LIKE '%1'")).all()
    assert len(samples) > 100
    # This process's index learns of the import from a NOTIFY, asynchronously.
    first_code, first_lon, first_lat = samples[0]
    wait_until(lambda: _located_in(first_lon, first_lat, first_code), timeout=30)
    for code, lon, lat in samples:
        assert ops.locate(SYSTEM, lon, lat).grid.code == code


def _a_grid_on_its_community_border(doc):
    shapes = {f["properties"]["code"]: shape(f["geometry"]) for f in doc["features"]}
    return next(i for i, f in enumerate(doc["features"]) if len(code := f["properties"]["code"]) == 15
                and shapely.intersection(shapes[code].boundary, shapes[code[:12]].boundary).length > 0.002)


def test_a_real_violation_is_refused_with_index_code_size_and_the_part(real_city):
    doc = copy.deepcopy(real_city.doc)
    i = _a_grid_on_its_community_border(doc)
    code = doc["features"][i]["properties"]["code"]
    grown = shapely.affinity.scale(shape(doc["features"][i]["geometry"]), 1.05, 1.05)
    doc["features"][i]["geometry"] = json.loads(shapely.to_geojson(grown))
    doc["features"][0]["properties"]["name"] = "renamed, but the import will fail"
    before = units_fingerprint()
    with pytest.raises(InvalidArgument) as info:
        ops.import_units(SYSTEM, doc)
    message = info.value.message
    assert message.startswith(f"feature {i} ({code}): not inside its parent {code[:12]}: ")
    area = float(re.search(r": ([0-9,.]+) m² lies outside it", message).group(1).replace(",", ""))
    reach = re.search(r"reaching ([0-9,.]+) m from its border \(tolerance 0.5 m\)", message).group(1)
    reach = float(reach.replace(",", ""))
    assert area > 100 and reach > 1
    part = geojson_after(message, "the part outside: ")
    assert part["type"] == "MultiPolygon" and shapely.intersects(shape(part), grown)
    assert units_fingerprint() == before  # nothing written, the rename neither


def test_real_invalid_rings_are_refused_and_repaired_only_on_request(real_city):
    published = {"type": "FeatureCollection",
                 "features": [c for c in load_counties() if c["properties"]["code"] in URBAN]}
    before = units_fingerprint()
    with pytest.raises(InvalidArgument) as info:
        ops.import_units(SYSTEM, published)
    assert info.value.message == ("feature 0 (130102): invalid polygon: Ring Self-intersection[114.5087890625 "
                                  "38.04296875] (the repair option, --repair, repairs it and reports the repair)")
    assert units_fingerprint() == before
    try:
        result = ops.import_units(SYSTEM, published, None, domain.ImportOptions(repair=True))
        repaired = {a.code: a.detail for a in result.adjustments if a.kind == domain.REPAIRED}
        assert sorted(repaired) == ["130102", "130104", "130108"]  # 130105 was valid as published
        assert repaired["130108"] == "Ring Self-intersection[114.5927734375 37.97265625]"
    finally:  # the counties as the generator repaired them, for the tests after this one
        counties = [f for f in real_city.doc["features"] if f["properties"]["code"] in URBAN]
        ops.import_units(SYSTEM, {"type": "FeatureCollection", "features": counties})


# --- the files cities have --------------------------------------------------------------------

def write_layer(path, features, epsg: int, driver: str, encoding: str = "UTF-8") -> None:
    """features as a Shapefile or GeoPackage in another CRS, with Chinese attribute names."""
    to_crs = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
    geometries = shapely.transform(shapely.from_geojson([json.dumps(f["geometry"]) for f in features]),
                                   lambda xy: np.column_stack(to_crs.transform(xy[:, 0], xy[:, 1])))
    columns = [np.array([f["properties"][k] for f in features], dtype=object) for k in ("code", "name")]
    pyogrio.raw.write(str(path), shapely.to_wkb(geometries), columns, ["编码", "名称"], driver=driver,
                      geometry_type="MultiPolygon", crs=f"EPSG:{epsg}", encoding=encoding)


def close_to_stored(features) -> float:
    """The largest distance (degrees) between a feature as generated and as stored."""
    with session_scope() as s:
        stored = dict(s.execute(text("SELECT code, ST_AsBinary(geom) FROM grid.units WHERE code = ANY(:codes)"),
                                {"codes": [f["properties"]["code"] for f in features]}).all())
    return max(shapely.hausdorff_distance(shape(f["geometry"]),
                                          shapely.from_wkb(bytes(stored[f["properties"]["code"]])))
               for f in features)


@pytest.mark.parametrize("suffix, driver, epsg, crs_name", [
    ("shp", "ESRI Shapefile", 4547, "EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E)"),
    ("gpkg", "GPKG", 4526, "EPSG:4526 (CGCS2000 / 3-degree Gauss-Kruger zone 38)"),
    ("gpkg", "GPKG", 4490, "EPSG:4490 (China Geodetic Coordinate System 2000)"),
])
def test_a_district_from_a_cgcs2000_file_with_chinese_fields_imports_through_the_cli(
        real_city, environment, tmp_path, suffix, driver, epsg, crs_name):
    district = features_under(real_city.doc, "130105")  # 新华区 and its 6 streets, 54 communities, 486 grids
    path = tmp_path / f"新华区.{suffix}"
    write_layer(path, district, epsg, driver)
    plain = gridbus_cli("grid", "import", str(path), env=environment)
    assert plain.returncode != 0
    assert "feature 0: no property 'code' for the code (its properties: 编码, 名称); name the right one with " \
           "--code-field" in plain.stderr
    result = gridbus_cli("grid", "import", str(path), "--code-field", "编码", "--name-field", "名称", env=environment)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"created 0, updated \d+, unchanged \d+", lines[0])
    assert lines[1] == f"coordinates read as {crs_name}"
    assert lines[2].startswith("adjusted within the tolerance of 0.5 m: ")
    assert close_to_stored(district) < 1e-8  # a millimetre: PROJ's round trip, and noise clipped away


def test_a_shapefile_without_its_prj_needs_crs_and_one_without_its_cpg_needs_encoding(real_city, environment, tmp_path):
    district = features_under(real_city.doc, "130105")
    path = tmp_path / "xinhua.shp"
    write_layer(path, district, 4547, "ESRI Shapefile", encoding="GBK")
    path.with_suffix(".prj").unlink()
    path.with_suffix(".cpg").unlink()
    fields = ["--code-field", "编码", "--name-field", "名称"]
    no_crs = gridbus_cli("grid", "import", str(path), *fields, env=environment)
    assert no_crs.returncode != 0
    assert "names no coordinate reference system (a Shapefile without its .prj?): give it with --crs" in no_crs.stderr
    no_encoding = gridbus_cli("grid", "import", str(path), *fields, "--crs", "EPSG:4547", env=environment)
    assert no_encoding.returncode != 0 and "no property '编码' for the code" in no_encoding.stderr
    result = gridbus_cli("grid", "import", str(path), *fields, "--crs", "EPSG:4547", "--encoding", "GBK",
                         env=environment)
    assert result.returncode == 0, result.stderr
    assert "coordinates read as EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E)" in result.stdout
    with session_scope() as s:
        assert s.execute(text("SELECT name FROM grid.units WHERE code = '130105001'")).scalar() == "新华区第1街道"


# --- over gRPC --------------------------------------------------------------------------------

def test_import_units_over_grpc_takes_the_tolerance_and_returns_the_adjustments(real_city, grid_stub):
    admin = metadata(token("admin", "130100"))
    body = json.dumps({"type": "FeatureCollection", "features": features_under(real_city.doc, "130108")}).encode()
    with pytest.raises(grpc.RpcError) as strict:
        grid_stub.ImportUnits(pb.ImportUnitsRequest(feature_collection_geojson=body, tolerance_m=0), metadata=admin)
    assert strict.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not inside its parent" in strict.value.details() and "(tolerance 0 m)" in strict.value.details()
    reply = grid_stub.ImportUnits(pb.ImportUnitsRequest(feature_collection_geojson=body), metadata=admin)
    assert reply.tolerance_m == 0.5
    assert reply.created == 0 and reply.updated + reply.unchanged == 1 + 6 + 54 + 486
    clipped = [a for a in reply.adjustments if a.kind == pb.ImportAdjustment.KIND_CLIPPED]
    assert clipped and all(a.other_code == parent_of(a.code) and a.area_m2 < 0.01 for a in clipped)
    expected = [(a.index, a.code, a.kind, a.other_code) for a in ops.import_units(
        SYSTEM, json.loads(body)).adjustments]
    kinds = {v: k for k, v in pb.ImportAdjustment.Kind.items()}
    assert [(a.feature_index, a.code, kinds[a.kind].removeprefix("KIND_").lower(), a.other_code)
            for a in reply.adjustments] == expected


def test_a_violation_over_grpc_is_invalid_argument_with_the_part_as_geojson(real_city, grid_stub):
    features = features_under(real_city.doc, "130108")
    i = _a_grid_on_its_community_border({"features": features})
    grown = shapely.affinity.scale(shape(features[i]["geometry"]), 1.05, 1.05)
    features[i]["geometry"] = json.loads(shapely.to_geojson(grown))
    body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    with pytest.raises(grpc.RpcError) as info:
        grid_stub.ImportUnits(pb.ImportUnitsRequest(feature_collection_geojson=body, repair=True),
                              metadata=metadata(token("admin", "130108")))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details()
    assert details.startswith(f"feature {i} ({features[i]['properties']['code']}): not inside its parent ")
    assert re.search(r"[0-9,.]+ m² lies outside it, reaching [0-9,.]+ m from its border", details)
    assert geojson_after(details, "the part outside: ")["type"] == "MultiPolygon"
