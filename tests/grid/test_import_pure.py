"""The parts of an import that need no server: options, attribute mapping, the summary, reading
GeoJSON in another coordinate reference system, and the ECharts decoder behind the real city."""
import json
import math

import pyproj
import pytest

from demo import realcity
from gridbus.grid.v1 import grid_pb2 as pb
from services.grid import boundary_files, domain
from services.grid.cli import import_summary
from services.grid.grpc_server import _ADJUSTMENT
from services.grid.operations import ImportResult
from shared.errors import InvalidArgument


def _feature(properties, ring=((114.5, 38.0), (114.6, 38.0), (114.6, 38.1), (114.5, 38.0))):
    return {"type": "Feature", "properties": properties,
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}}


# --- options --------------------------------------------------------------------------------

@pytest.mark.parametrize("tolerance", [-0.1, math.nan, math.inf, 100.5, True, "0.5"])
def test_a_tolerance_out_of_range_is_refused(tolerance):
    with pytest.raises(InvalidArgument, match="tolerance must be between 0 and 100 m"):
        domain.ImportOptions(tolerance_m=tolerance)


def test_the_default_tolerance_is_half_a_metre_and_zero_is_allowed():
    assert domain.ImportOptions().tolerance_m == domain.DEFAULT_TOLERANCE_M == 0.5
    assert domain.ImportOptions(tolerance_m=0).tolerance_m == 0


@pytest.mark.parametrize("field", ["", "  "])
def test_a_field_option_must_name_a_property(field):
    with pytest.raises(InvalidArgument, match="code field must be a property name"):
        domain.ImportOptions(code_field=field)


# --- attribute mapping ------------------------------------------------------------------------

CHINESE = domain.ImportOptions(code_field="编码", name_field="名称")


def test_chinese_attribute_names_are_mapped_by_the_options():
    draft = domain.parse_feature(3, _feature({"编码": "130102", "名称": "长安区", "面积": 141.2}), CHINESE)
    assert (draft.index, draft.code, draft.name, draft.level) == (3, "130102", "长安区", "district")


@pytest.mark.parametrize("stored_as", [130102001, 130102001.0, " 130102001 "])
def test_codes_stored_as_numbers_or_padded_read_as_codes(stored_as):
    draft = domain.parse_feature(0, _feature({"编码": stored_as, "名称": "街道"}), CHINESE)
    assert draft.code == "130102001"


def test_a_missing_code_field_names_the_properties_there_are_and_the_option():
    with pytest.raises(InvalidArgument) as info:
        domain.parse_feature(7, _feature({"编码": "130102", "名称": "长安区"}))
    assert info.value.message == ("feature 7: no property 'code' for the code (its properties: 编码, 名称); "
                                  "name the right one with --code-field")


def test_a_missing_name_field_is_refused_the_same_way():
    with pytest.raises(InvalidArgument, match="no property '名称' for the name .* --name-field"):
        domain.parse_feature(0, _feature({"编码": "130102", "NAME": "x"}), CHINESE)


# --- the summary ------------------------------------------------------------------------------

def test_every_adjustment_kind_has_a_description_and_a_proto_kind():
    kinds = set(domain.ADJUSTMENT_KINDS)
    assert kinds == set(_ADJUSTMENT)
    proto_kinds = {v.number for v in pb.ImportAdjustment.Kind.DESCRIPTOR.values if v.number}
    assert proto_kinds == set(_ADJUSTMENT.values())


def test_the_summary_lists_the_largest_adjustments_per_feature_with_totals():
    adjustments = [
        domain.Adjustment(6, "130102001001003", domain.CLIPPED, 2.5e-7, "130102001001"),
        domain.Adjustment(9, "130102001001005", domain.OVERLAP, 0.25, "130102001001004"),
        domain.Adjustment(1, "130102", domain.REPAIRED, 0.0, detail="Ring Self-intersection[114.5 38.0]"),
    ]
    result = ImportResult(3, 0, 0, 0.5, adjustments)
    lines = import_summary(result, "EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E)", show=2).splitlines()
    assert lines[0] == "created 3, updated 0, unchanged 0"
    assert lines[1] == "coordinates read as EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E)"
    assert lines[2] == ("adjusted within the tolerance of 0.5 m: clipped 1 (2.5e-07 m²), overlap 1 (0.25 m²), "
                        "repaired 1 (0 m²)")
    assert lines[3] == "the largest 2 of 3 adjustments (--show 0 lists all):"
    assert lines[5].split() == ["9", "130102001001005", "0.25", "overlap", "with", "sibling", "130102001001004",
                                "removed,", "left", "to", "130102001001004"]
    assert lines[6].split()[:4] == ["6", "130102001001003", "2.5e-07", "clipped"]
    assert len(lines) == 7
    everything = import_summary(result, "EPSG:4326", show=0)
    assert "all 3 adjustments" in everything
    assert "invalid ring repaired (Ring Self-intersection[114.5 38.0])" in everything


def test_the_summary_of_a_clean_import_says_nothing_was_adjusted():
    summary = import_summary(ImportResult(0, 0, 5, 0.5), "EPSG:4326", show=50)
    assert summary.splitlines()[2] == "nothing adjusted (tolerance 0.5 m)"


# --- coordinate reference systems -------------------------------------------------------------

def test_plain_geojson_passes_through_untouched():
    doc = {"type": "FeatureCollection", "features": [_feature({"code": "130102", "name": "长安区"})]}
    source = boundary_files.read_geojson(json.dumps(doc))
    assert source.crs_name == "EPSG:4326" and source.feature_collection == doc


def test_geojson_naming_a_gauss_krueger_zone_is_transformed_to_wgs84():
    to_gk = pyproj.Transformer.from_crs(4326, 4547, always_xy=True)
    ring = [to_gk.transform(lon, lat) for lon, lat in [(114.5, 38.0), (114.6, 38.0), (114.6, 38.1), (114.5, 38.0)]]
    doc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4547"}},
           "features": [_feature({"code": "130102", "name": "长安区"}, ring)]}
    source = boundary_files.read_geojson(json.dumps(doc))
    assert source.crs_name == "EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E)"
    ring = source.feature_collection["features"][0]["geometry"]["coordinates"][0][0]
    assert ring[0] == pytest.approx([114.5, 38.0], abs=1e-9) and ring[2] == pytest.approx([114.6, 38.1], abs=1e-9)


def test_the_crs_option_overrides_and_an_unknown_crs_is_refused():
    with pytest.raises(InvalidArgument, match="unknown coordinate reference system 'EPSG:999999'"):
        boundary_files.read_geojson("{}", crs="EPSG:999999")
    assert boundary_files.read_geojson('{"type": "FeatureCollection", "features": []}',
                                       crs="EPSG:4490").crs_name == "EPSG:4490 (China Geodetic Coordinate System 2000)"


@pytest.mark.parametrize("epsg", [4490, *range(4513, 4555)])
def test_cgcs2000_and_its_gauss_krueger_zones_are_known(epsg):
    assert boundary_files.describe(boundary_files.resolve_crs(f"EPSG:{epsg}")).startswith(f"EPSG:{epsg} (")


def test_garbage_is_not_json():
    with pytest.raises(InvalidArgument, match="not JSON"):
        boundary_files.read_geojson(b"{not json")


# --- the ECharts decoder ----------------------------------------------------------------------

def _encode(points, scale=1024):
    """The inverse of the decoder, for the round trip: zig-zag deltas, each plus 64."""
    ints = [(round(x * scale), round(y * scale)) for x, y in points]
    out, prev = [], ints[0]
    for x, y in ints:
        for delta in (x - prev[0], y - prev[1]):
            out.append(chr((2 * delta if delta >= 0 else -2 * delta - 1) + 64))
        prev = (x, y)
    return "".join(out), ints[0]


def test_the_decoder_reverses_zigzag_delta_encoding():
    points = [(114.5, 38.0), (114.5009765625, 37.9990234375), (114.498046875, 38.001953125), (114.5, 38.0)]
    encoded, offset = _encode(points)
    assert realcity.decode_ring(encoded, offset) == [list(p) for p in points]


def test_the_decoder_reads_a_real_county_ring():
    # The first four points of 长安区 (130102) as published: offset (117312, 38950) in 1/1024 degree.
    ring = realcity.decode_ring("@@G@@@C@", (117312, 38950))
    assert ring == [[114.5625, 38.037109375], [114.55859375, 38.037109375],
                    [114.55859375, 38.037109375], [114.556640625, 38.037109375]]
    assert realcity.load_counties()[0]["geometry"]["coordinates"][0][0][:4] == ring


def test_a_map_decodes_to_closed_multipolygon_rings():
    doc = {"UTF8Encoding": True, "features": [{"type": "Feature", "id": "130102", "properties": {"name": "长安区"},
           "geometry": {"type": "Polygon", "coordinates": ["@@B@@B"], "encodeOffsets": [[1024, 2048]]}}]}
    geometry = realcity.decode_map(doc)["features"][0]["geometry"]
    assert geometry == {"type": "MultiPolygon",
                        "coordinates": [[[[1.0, 2.0], [1.0009765625, 2.0], [1.0009765625, 2.0009765625], [1.0, 2.0]]]]}


def test_the_committed_counties_are_the_22_of_shijiazhuang():
    counties = realcity.load_counties()
    assert len(counties) == 22
    assert {c["properties"]["code"][:4] for c in counties} == {"1301"}
    assert counties[0]["properties"] == {"code": "130102", "name": "长安区",
                                         "source_file": "57beae128e50de9a7d78676142111859.js"}
