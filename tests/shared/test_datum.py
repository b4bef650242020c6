"""Datum conversions against published reference pairs, both directions, and round trips. No server."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import datum
from shared.datum import Datum
from shared.errors import InvalidArgument


def metres(a, b) -> float:
    """Great-circle distance between two (lon, lat) points; plenty for metre-level checks."""
    (lon1, lat1), (lon2, lat2) = a, b
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    h = (math.sin((phi2 - phi1) / 2) ** 2
         + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371008.8 * math.asin(math.sqrt(h))


# AMap Web Service, coordinate conversion (coordsys=gps): its documented example.
AMAP_WGS84 = (116.481499, 39.990475)
AMAP_GCJ02 = (116.487585177952, 39.991754014757)
# Alibaba Cloud address purification, TransferCoord: its documented example (6 decimals).
# Its WGS 84 answer for the same point (120.021519, 30.281543) is the one-step approximate
# inverse, 1.6 m from the exact one, so only its GCJ-02/BD-09 pair is a reference here.
ALIYUN_GCJ02 = (120.026268, 30.279164)
ALIYUN_BD09 = (120.032768, 30.285238)
ROUNDING_M = 0.1  # six decimals of a degree are up to ~0.06 m


def test_wgs84_to_gcj02_matches_amaps_published_example():
    assert metres(datum.wgs84_to_gcj02(*AMAP_WGS84), AMAP_GCJ02) < ROUNDING_M


def test_gcj02_to_wgs84_inverts_amaps_published_example_within_a_metre():
    assert metres(datum.gcj02_to_wgs84(*AMAP_GCJ02), AMAP_WGS84) < ROUNDING_M


def test_gcj02_to_bd09_matches_the_published_example():
    assert metres(datum.gcj02_to_bd09(*ALIYUN_GCJ02), ALIYUN_BD09) < ROUNDING_M


def test_bd09_to_gcj02_inverts_the_published_example_within_a_metre():
    assert metres(datum.bd09_to_gcj02(*ALIYUN_BD09), ALIYUN_GCJ02) < ROUNDING_M


def test_bd09_to_wgs84_goes_through_gcj02():
    wgs = datum.bd09_to_wgs84(*ALIYUN_BD09)
    assert metres(datum.wgs84_to_gcj02(*wgs), ALIYUN_GCJ02) < ROUNDING_M
    assert metres(datum.wgs84_to_bd09(*wgs), ALIYUN_BD09) < ROUNDING_M


def test_the_offsets_are_what_makes_the_datum_matter():
    """Pinned as sent, a GCJ-02 or BD-09 point is hundreds of metres from where it was taken."""
    assert 300 < metres(AMAP_GCJ02, AMAP_WGS84) < 1000
    assert 800 < metres(datum.wgs84_to_bd09(*AMAP_WGS84), AMAP_WGS84) < 2000


# Points inside the box, away from its edges, where a point and its GCJ-02 image both lie inside.
in_china = st.tuples(st.floats(74.0, 134.5), st.floats(4.5, 53.0))
outside_china = st.one_of(
    st.tuples(st.floats(-180.0, 73.6), st.floats(-90.0, 90.0)),
    st.tuples(st.floats(135.1, 180.0), st.floats(-90.0, 90.0)),
    st.tuples(st.floats(-180.0, 180.0), st.floats(-90.0, 3.8)),
    st.tuples(st.floats(-180.0, 180.0), st.floats(53.6, 90.0)))
TIGHT_DEGREES = 1e-7  # about a centimetre


@settings(max_examples=500, deadline=None)
@given(in_china)
def test_gcj02_round_trip(point):
    lon, lat = point
    back = datum.gcj02_to_wgs84(*datum.wgs84_to_gcj02(lon, lat))
    assert back == pytest.approx((lon, lat), abs=TIGHT_DEGREES)
    again = datum.wgs84_to_gcj02(*datum.gcj02_to_wgs84(lon, lat))
    assert again == pytest.approx((lon, lat), abs=TIGHT_DEGREES)


@settings(max_examples=500, deadline=None)
@given(in_china)
def test_bd09_round_trip(point):
    lon, lat = point
    assert datum.bd09_to_wgs84(*datum.wgs84_to_bd09(lon, lat)) == pytest.approx((lon, lat), abs=TIGHT_DEGREES)
    assert datum.bd09_to_gcj02(*datum.gcj02_to_bd09(lon, lat)) == pytest.approx((lon, lat), abs=TIGHT_DEGREES)


@settings(max_examples=300, deadline=None)
@given(outside_china)
def test_outside_china_gcj02_is_wgs84(point):
    lon, lat = point
    assert datum.wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert datum.gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_a_grid_of_points_converts_as_arrays_exactly_as_one_by_one():
    lon, lat = np.meshgrid(np.linspace(74.0, 134.5, 61), np.linspace(4.5, 53.0, 49))
    lon, lat = lon.ravel(), lat.ravel()
    for convert in (datum.wgs84_to_gcj02, datum.gcj02_to_wgs84, datum.wgs84_to_bd09, datum.bd09_to_wgs84):
        many_lon, many_lat = convert(lon, lat)
        ones = np.array([convert(x, y) for x, y in zip(lon, lat)])
        # The same to well under a millimetre: an array iterates until its slowest point converges.
        np.testing.assert_allclose(many_lon, ones[:, 0], rtol=0, atol=datum.CONVERGED_DEGREES)
        np.testing.assert_allclose(many_lat, ones[:, 1], rtol=0, atol=datum.CONVERGED_DEGREES)
    back_lon, back_lat = datum.gcj02_to_wgs84(*datum.wgs84_to_gcj02(lon, lat))
    assert np.abs(back_lon - lon).max() < TIGHT_DEGREES and np.abs(back_lat - lat).max() < TIGHT_DEGREES


def test_wgs84_and_cgcs2000_pass_through_and_the_others_dispatch():
    for d in (Datum.WGS84, Datum.CGCS2000):
        assert datum.to_wgs84(d, *AMAP_WGS84) == AMAP_WGS84
    assert datum.to_wgs84(Datum.GCJ02, *AMAP_GCJ02) == datum.gcj02_to_wgs84(*AMAP_GCJ02)
    assert datum.to_wgs84(Datum.BD09, *ALIYUN_BD09) == datum.bd09_to_wgs84(*ALIYUN_BD09)
    assert datum.from_wgs84(Datum.BD09, *AMAP_WGS84) == datum.wgs84_to_bd09(*AMAP_WGS84)


def test_datum_names():
    assert datum.parse(None) is datum.parse("") is Datum.WGS84
    assert datum.parse("GCJ02") is Datum.GCJ02 and datum.parse("bd09") is Datum.BD09
    with pytest.raises(InvalidArgument, match="not one of"):
        datum.parse("mars")
