"""gridbus.common.v1's geo messages (protos/gridbus/common/v1/geo.proto) and shared/datum.py's
Datum: the one mapping every gRPC server and client uses."""
from __future__ import annotations

from gridbus.common.v1 import geo_pb2

from shared.datum import Datum
from shared.errors import InvalidArgument

FROM_PB = {geo_pb2.DATUM_UNSPECIFIED: Datum.WGS84, geo_pb2.DATUM_WGS84: Datum.WGS84,
           geo_pb2.DATUM_CGCS2000: Datum.CGCS2000, geo_pb2.DATUM_GCJ02: Datum.GCJ02, geo_pb2.DATUM_BD09: Datum.BD09}
TO_PB = {d: v for v, d in FROM_PB.items() if v != geo_pb2.DATUM_UNSPECIFIED}
SHIFTED = frozenset({Datum.GCJ02, Datum.BD09})  # the datums whose points move when converted to WGS 84


def datum(value: int) -> Datum:
    """A request's datum field: unspecified is WGS 84; a number the proto does not define is
    InvalidArgument."""
    if value not in FROM_PB:
        raise InvalidArgument(f"datum {value} is not one of WGS84, CGCS2000, GCJ02, BD09")
    return FROM_PB[value]


def geo_point(lon: float, lat: float, d: Datum) -> geo_pb2.GeoPoint:
    return geo_pb2.GeoPoint(lon=lon, lat=lat, datum=TO_PB[d])
