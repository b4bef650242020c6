"""The datums phones report points in, and their conversion to WGS 84 before a point is pinned.

Apps built on the Chinese map SDKs do not report WGS 84: AMap and Tencent report GCJ-02, Baidu
reports BD-09, each shifted from WGS 84 by a hundred metres or more, so a point pinned as sent
lands in the wrong grid. gridbus stores WGS 84 and converts on the way in.

- WGS 84 and CGCS2000 (China's national datum) are taken as equal: their frames differ by
  well under a metre (plate motion since CGCS2000's epoch 2000.0), below a phone fix's accuracy.
- GCJ-02 is WGS 84 plus a published closed-form offset (a polynomial and sine series in the
  distance from 105E 35N, scaled by the Krasovsky 1940 ellipsoid's degree lengths). It applies
  only inside the box that the widely used implementations of that algorithm share:
  73.66..135.05 E, 3.86..53.55 N; outside it GCJ-02 equals WGS 84. (Within a few hundred metres
  of the box's edges, all at sea or abroad, a point and its image can fall on either side.)
- BD-09 is GCJ-02 turned into polar form about the origin, nudged (radius by 2e-5 * sin(3000 lat),
  angle by 3e-6 * cos(3000 lon)) and shifted by (0.0065, 0.006) degrees; everywhere, as Baidu does.

Forward conversions (from WGS 84) are closed-form. Their inverses have no closed form; they are
solved by fixed-point iteration (the offset changes by less than 1% of a step over the step
itself, so each round gains two digits) until the forward image of the answer is within
CONVERGED_DEGREES of the input, about 0.1 mm.

Written here rather than taken from a package: the Python ports on PyPI are either unmaintained
since 2018-2019 (prcoords, eviltransform, coord-convert; prcoords' iterative inverse also shifts
points outside China), stop at the one-step approximate inverse, a metre or two off
(coordTransform), or convert one point per foreign-function call (geocoordinates-rs, ~25 us a
point); gridbus needs the exact inverse over numpy arrays, for LocateMany's whole batch at once.

Every function takes scalars or numpy arrays (lon, lat) and returns the same shape.
"""
from __future__ import annotations

import math
from enum import Enum
from types import SimpleNamespace

import numpy as np

from shared.errors import InvalidArgument


class Datum(str, Enum):
    WGS84 = "wgs84"
    CGCS2000 = "cgcs2000"
    GCJ02 = "gcj02"
    BD09 = "bd09"


DEFAULT = Datum.WGS84

# Where GCJ-02 applies (degrees); outside it GCJ-02 is WGS 84.
CHINA_WEST, CHINA_EAST, CHINA_SOUTH, CHINA_NORTH = 73.66, 135.05, 3.86, 53.55

# Krasovsky 1940, the ellipsoid whose degree lengths scale the GCJ-02 offset.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_E2 = 0.00669342162296594323

_BD_SHIFT_LON, _BD_SHIFT_LAT = 0.0065, 0.006
_BD_RADIUS_NUDGE, _BD_ANGLE_NUDGE = 2e-5, 3e-6
_BD_FREQUENCY = math.pi * 3000.0 / 180.0

CONVERGED_DEGREES = 1e-9
MAX_ROUNDS = 12


def parse(name: str | None) -> Datum:
    """A datum from its name ('' or None: WGS 84); InvalidArgument for any other name."""
    if not name:
        return DEFAULT
    try:
        return Datum(name.lower())
    except ValueError:
        raise InvalidArgument(f"datum {name!r} is not one of {', '.join(d.value for d in Datum)}")


def in_china(lon, lat):
    """True where GCJ-02 differs from WGS 84."""
    return (lon >= CHINA_WEST) & (lon <= CHINA_EAST) & (lat >= CHINA_SOUTH) & (lat <= CHINA_NORTH)


# The same formulas serve one point (math: a few microseconds) and arrays (numpy: LocateMany).
_ONE = SimpleNamespace(sin=math.sin, cos=math.cos, sqrt=math.sqrt, hypot=math.hypot, atan2=math.atan2,
                       radians=math.radians, worst=lambda a, b: max(abs(a), abs(b)))
_MANY = SimpleNamespace(sin=np.sin, cos=np.cos, sqrt=np.sqrt, hypot=np.hypot, atan2=np.arctan2,
                        radians=np.radians, worst=lambda a, b: max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0)))


def _inputs(lon, lat):
    if np.ndim(lon) == 0 and np.ndim(lat) == 0:
        return float(lon), float(lat), _ONE
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), _MANY


def _gcj_offset(lon, lat, m):
    """The GCJ-02 offset in degrees (dlon, dlat) at a WGS 84 point, ignoring the China box."""
    x, y, pi = lon - 105.0, lat - 35.0, math.pi
    root_x = m.sqrt(abs(x))
    shared = (20.0 * m.sin(6.0 * x * pi) + 20.0 * m.sin(2.0 * x * pi)) * 2.0 / 3.0
    north_m = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * root_x + shared
               + (20.0 * m.sin(y * pi) + 40.0 * m.sin(y / 3.0 * pi)) * 2.0 / 3.0
               + (160.0 * m.sin(y / 12.0 * pi) + 320.0 * m.sin(y / 30.0 * pi)) * 2.0 / 3.0)
    east_m = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * root_x + shared
              + (20.0 * m.sin(x * pi) + 40.0 * m.sin(x / 3.0 * pi)) * 2.0 / 3.0
              + (150.0 * m.sin(x / 12.0 * pi) + 300.0 * m.sin(x / 30.0 * pi)) * 2.0 / 3.0)
    phi = m.radians(lat)
    w2 = 1.0 - _KRASOVSKY_E2 * m.sin(phi) ** 2
    metres_per_degree_lat = m.radians(_KRASOVSKY_A * (1.0 - _KRASOVSKY_E2) / (w2 * m.sqrt(w2)))
    metres_per_degree_lon = m.radians(_KRASOVSKY_A / m.sqrt(w2) * m.cos(phi))
    return east_m / metres_per_degree_lon, north_m / metres_per_degree_lat


def _gcj_everywhere(lon, lat, m):
    dlon, dlat = _gcj_offset(lon, lat, m)
    return lon + dlon, lat + dlat


def _bd_everywhere(lon, lat, m):
    radius = m.hypot(lon, lat) + _BD_RADIUS_NUDGE * m.sin(lat * _BD_FREQUENCY)
    angle = m.atan2(lat, lon) + _BD_ANGLE_NUDGE * m.cos(lon * _BD_FREQUENCY)
    return radius * m.cos(angle) + _BD_SHIFT_LON, radius * m.sin(angle) + _BD_SHIFT_LAT


def _invert(forward, lon, lat, guess, m):
    """The point p with forward(p) == (lon, lat), by fixed-point iteration from a first guess."""
    glon, glat = guess
    for _ in range(MAX_ROUNDS):
        flon, flat = forward(glon, glat, m)
        err_lon, err_lat = flon - lon, flat - lat
        glon, glat = glon - err_lon, glat - err_lat
        if m.worst(err_lon, err_lat) < CONVERGED_DEGREES:
            break
    return glon, glat


def _only_in_china(convert, lon, lat):
    """convert(lon, lat, m) inside the China box, the point unchanged outside it."""
    lon, lat, m = _inputs(lon, lat)
    if m is _ONE:
        return convert(lon, lat, m) if in_china(lon, lat) else (lon, lat)
    out_lon, out_lat = lon.copy(), lat.copy()
    inside = in_china(lon, lat)
    out_lon[inside], out_lat[inside] = convert(lon[inside], lat[inside], m)
    return out_lon, out_lat


def _gcj_inverse(lon, lat, m):
    dlon, dlat = _gcj_offset(lon, lat, m)
    return _invert(_gcj_everywhere, lon, lat, (lon - dlon, lat - dlat), m)


def wgs84_to_gcj02(lon, lat):
    return _only_in_china(_gcj_everywhere, lon, lat)


def gcj02_to_wgs84(lon, lat):
    return _only_in_china(_gcj_inverse, lon, lat)


def gcj02_to_bd09(lon, lat):
    lon, lat, m = _inputs(lon, lat)
    return _bd_everywhere(lon, lat, m)


def bd09_to_gcj02(lon, lat):
    lon, lat, m = _inputs(lon, lat)
    x, y = lon - _BD_SHIFT_LON, lat - _BD_SHIFT_LAT
    radius = m.hypot(x, y) - _BD_RADIUS_NUDGE * m.sin(y * _BD_FREQUENCY)
    angle = m.atan2(y, x) - _BD_ANGLE_NUDGE * m.cos(x * _BD_FREQUENCY)
    return _invert(_bd_everywhere, lon, lat, (radius * m.cos(angle), radius * m.sin(angle)), m)


def wgs84_to_bd09(lon, lat):
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat):
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


_TO_WGS84 = {Datum.GCJ02: gcj02_to_wgs84, Datum.BD09: bd09_to_wgs84}
_FROM_WGS84 = {Datum.GCJ02: wgs84_to_gcj02, Datum.BD09: wgs84_to_bd09}


def to_wgs84(datum: Datum, lon, lat):
    """(lon, lat) in `datum` as WGS 84; WGS 84 and CGCS2000 come back as they are."""
    convert = _TO_WGS84.get(datum)
    return (lon, lat) if convert is None else convert(lon, lat)


def from_wgs84(datum: Datum, lon, lat):
    """A WGS 84 (lon, lat) as `datum` would report it."""
    convert = _FROM_WGS84.get(datum)
    return (lon, lat) if convert is None else convert(lon, lat)
