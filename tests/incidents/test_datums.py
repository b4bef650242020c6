"""Reports in the datums phones send (GCJ-02 from AMap and Tencent, BD-09 from Baidu): converted
to WGS 84 before they are pinned, stored in WGS 84 with the point as sent; a datum the proto does
not define, or a point its datum's shift carries out of range, is INVALID_ARGUMENT; through gRPC
(Report, ReportBatch) and the command line (Open311: tests/open311/test_datum.py)."""
from __future__ import annotations

import math
import subprocess

import grpc
import pytest
from sqlalchemy import text

from gridbus.common.v1 import geo_pb2
from shared import datum
from shared.datum import Datum
from shared.db import session_scope
from tests.conftest import CITY
from tests.incidents.conftest import CELLS, GRIDS, report_request
from tests.incidents.test_cli import GRIDBUS
from tests.support import metadata, token

PB = {Datum.GCJ02: geo_pb2.DATUM_GCJ02, Datum.BD09: geo_pb2.DATUM_BD09, Datum.WGS84: geo_pb2.DATUM_WGS84}


def _near_east_border() -> tuple[str, str, float, float]:
    """A grid with a neighbour to the east, and a WGS 84 point 100 m inside its eastern border:
    GCJ-02 (about 470 m east of WGS 84 here) and BD-09 (about 1.1 km) carry it into the neighbour."""
    for code in GRIDS:
        w, s, e, n = CELLS[code]
        if e < CITY.east:
            lon, lat = e - 0.001, (s + n) / 2
            neighbour = next(c for c, (w2, s2, e2, n2) in CELLS.items() if w2 <= e + 0.005 < e2 and s2 <= lat < n2)
            return code, neighbour, lon, lat
    raise AssertionError("the test city has no grid with an eastern neighbour")


GRID, NEIGHBOUR, LON, LAT = _near_east_border()
OFFICER = metadata(token("officer", GRID, NEIGHBOUR, member_id="officer-datums"))


def sent_as(d: Datum) -> tuple[float, float]:
    lon, lat = datum.from_wgs84(d, LON, LAT)
    return float(lon), float(lat)


def _request(lon, lat, d: int, **kw):
    req = report_request(at=(lon, lat), **kw)
    req.location.datum = d
    return req


@pytest.mark.parametrize("d", [Datum.GCJ02, Datum.BD09])
def test_a_shifted_point_is_pinned_where_it_is_and_kept_as_sent(stub, d):
    lon, lat = sent_as(d)
    out = stub.Report(_request(lon, lat, PB[d]), metadata=OFFICER).incident
    assert out.grid_code == GRID
    assert math.isclose(out.location.lon, LON, abs_tol=1e-8) and math.isclose(out.location.lat, LAT, abs_tol=1e-8)
    assert out.location.datum == geo_pb2.DATUM_UNSPECIFIED  # an incident's location is WGS 84
    assert (out.as_sent.lon, out.as_sent.lat, out.as_sent.datum) == (lon, lat, PB[d])
    with session_scope() as s:  # stored in WGS 84, the point as sent beside it
        row = s.execute(text("SELECT ST_X(location) AS x, ST_Y(location) AS y, location_sent_datum AS d "
                             "FROM incidents.incidents WHERE id = :i"), {"i": out.id}).one()
    assert math.isclose(row.x, LON, abs_tol=1e-8) and row.d == d.value


def test_the_same_point_taken_as_wgs84_lands_in_the_neighbour(stub):
    lon, lat = sent_as(Datum.GCJ02)
    out = stub.Report(_request(lon, lat, geo_pb2.DATUM_UNSPECIFIED), metadata=OFFICER).incident
    assert out.grid_code == NEIGHBOUR and out.as_sent.datum == geo_pb2.DATUM_WGS84


def test_a_retry_in_the_same_datum_is_a_replay(stub):
    lon, lat = sent_as(Datum.BD09)
    req = _request(lon, lat, geo_pb2.DATUM_BD09)
    first = stub.Report(req, metadata=OFFICER)
    again = stub.Report(req, metadata=OFFICER)
    assert again.replayed and again.incident.id == first.incident.id


@pytest.mark.parametrize("lon, lat, d, says", [
    (LON, LAT, 99, "datum 99"),                                   # not a datum the proto defines
    (-180.0, 10.0, geo_pb2.DATUM_BD09, "outside -180..180"),      # BD-09's shift carries it past -180
    (LON, 90.5, geo_pb2.DATUM_GCJ02, "lat 90.5"),
    (float("nan"), LAT, geo_pb2.DATUM_GCJ02, "lon must be a finite number"),
])
def test_a_bad_datum_or_a_point_out_of_range_for_its_datum_is_invalid_argument(stub, lon, lat, d, says):
    req = _request(lon, lat, d)
    with pytest.raises(grpc.RpcError) as info:
        stub.Report(req, metadata=metadata(token("service", member_id="datums")))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and says in info.value.details()
    with session_scope() as s:
        assert s.scalar(text("SELECT count(*) FROM incidents.incidents WHERE report_id = :r"), {"r": req.report_id}) == 0


def test_a_batch_takes_each_items_datum_and_refuses_only_the_bad_one(stub):
    items = [_request(*sent_as(Datum.GCJ02), geo_pb2.DATUM_GCJ02), _request(LON, LAT, 7),
             _request(*sent_as(Datum.BD09), geo_pb2.DATUM_BD09), _request(LON, LAT, geo_pb2.DATUM_WGS84)]
    out = stub.ReportBatch(iter(items), metadata=OFFICER)
    assert [r.code for r in out.results] == [0, grpc.StatusCode.INVALID_ARGUMENT.value[0], 0, 0]
    assert "datum 7" in out.results[1].message
    assert [r.incident.grid_code for r in out.results if r.code == 0] == [GRID, GRID, GRID]


def test_the_command_line_reports_in_a_datum(environment, incidents_server):
    lon, lat = sent_as(Datum.GCJ02)
    who = token("officer", GRID, member_id="officer-cli-datum")
    run = [GRIDBUS, "incidents", "--server", f"127.0.0.1:{incidents_server}", "--token", who]
    out = subprocess.run([*run, "report", "--category", "0102", "--title", "Bins", "--lon", repr(lon),
                          "--lat", repr(lat), "--datum", "gcj02"],
                         env=environment, capture_output=True, text=True, timeout=60, check=True).stdout
    assert GRID in out
    shown = subprocess.run([*run, "show", out.split()[0]], env=environment, capture_output=True, text=True,
                           timeout=60, check=True).stdout
    assert f"sent as ({lon:.6f}, {lat:.6f}) in gcj02" in shown
    refused = subprocess.run([*run, "report", "--category", "0102", "--title", "Bins", "--lon", "1", "--lat", "1",
                              "--datum", "mars"], env=environment, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "invalid choice: 'mars'" in refused.stderr
