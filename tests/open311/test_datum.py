"""Open311's `datum` parameter (gridbus's own; GeoReport v2's lat/long are WGS 84, the default):
a GCJ-02 point is converted before it is pinned, and an unknown datum is a 400."""
from __future__ import annotations

import json
import math
import uuid

from sqlalchemy import text

from shared.datum import Datum
from shared.db import session_scope
from tests.incidents.test_datums import GRID, LAT, LON, NEIGHBOUR, sent_as
from tests.open311.conftest import API_KEY
from tests.open311.test_http import call


def test_open311_takes_a_datum_parameter(base):
    lon, lat = sent_as(Datum.GCJ02)
    form = {"api_key": API_KEY, "service_code": "0102", "lat": lat, "long": lon, "description": "bins"}
    ids = {}
    for name, extra in (("gcj02", {"datum": "gcj02"}), ("default", {}), ("wgs84", {"datum": "wgs84"})):
        status, _, body = call(f"{base}/requests.json", {**form, **extra})
        assert status == 201, body
        ids[name] = json.loads(body)[0]["service_request_id"]
    with session_scope() as s:
        grids = {name: s.scalar(text("SELECT grid_code FROM incidents.incidents WHERE id = :i"), {"i": i})
                 for name, i in ids.items()}
    assert grids == {"gcj02": GRID, "default": NEIGHBOUR, "wgs84": NEIGHBOUR}  # GeoReport v2's default: WGS 84
    _, _, body = call(f"{base}/requests/{ids['gcj02']}.json?api_key={API_KEY}")
    [own] = json.loads(body)
    assert math.isclose(own["long"], LON, abs_tol=1e-8) and math.isclose(own["lat"], LAT, abs_tol=1e-8)
    status, _, body = call(f"{base}/requests.json", {**form, "datum": "mars", "description": str(uuid.uuid4())})
    assert status == 400 and "datum 'mars'" in json.loads(body)[0]["description"]
