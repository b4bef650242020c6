"""Open311 GeoReport v2 against the real gateway process, database and broker."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from xml.etree import ElementTree as ET

import pytest

from tests.incidents.conftest import GRIDS, inside
from tests.support import service_process

API_KEY = "k-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def base(environment, city, categories):
    keys = {"GRIDBUS_OPEN311_API_KEYS": f"{API_KEY}=city-app"}
    with service_process(environment, "open311", "http", env=keys) as proc:
        yield f"http://127.0.0.1:{proc.port}/open311/v2"


def call(url: str, data: dict | None = None, headers: dict | None = None):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def post(base, **form):
    lon, lat = inside(GRIDS[6])
    fields = {"api_key": API_KEY, "service_code": "0102", "lat": lat, "long": lon,
              "description": "Overflowing bins\nnear the school"}
    fields.update(form)
    return call(f"{base}/requests.json", {k: v for k, v in fields.items() if v is not None})


def test_discovery_and_services_in_json_and_xml(base):
    status, ctype, body = call(f"{base}/discovery.json")
    assert status == 200 and ctype.startswith("application/json")
    assert json.loads(body)["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    status, _, body = call(f"{base}/services.json")
    services = {s["service_code"]: s for s in json.loads(body)}
    assert services["0102"]["group"].startswith("市容环境") and services["0102"]["type"] == "realtime"
    assert "01" not in services  # groups are not services
    status, ctype, body = call(f"{base}/services.xml")
    assert ctype.startswith("text/xml")
    codes = [e.findtext("service_code") for e in ET.fromstring(body).findall("service")]
    assert "0601" in codes
    status, _, body = call(f"{base}/services/0601.json")
    assert status == 200 and json.loads(body) == {"service_code": "0601", "attributes": []}
    status, _, body = call(f"{base}/services/9999.json")
    assert status == 404 and json.loads(body)[0]["code"] == 404


def test_post_then_read_back_status(base):
    status, _, body = post(base)
    assert status == 201
    request_id = json.loads(body)[0]["service_request_id"]
    status, _, body = call(f"{base}/requests/{request_id}.json")
    [req] = json.loads(body)
    assert (req["status"], req["service_code"], req["service_name"]) == ("open", "0102", "暴露垃圾 Exposed garbage")
    assert req["requested_datetime"].endswith("Z") and "reporter" not in json.dumps(req)
    status, _, body = call(f"{base}/requests/{request_id}.xml")
    assert ET.fromstring(body).find("request").findtext("status") == "open"
    status, _, body = call(f"{base}/requests.json?" + urllib.parse.urlencode({"service_request_id": request_id}))
    assert [r["service_request_id"] for r in json.loads(body)] == [request_id]
    status, _, body = call(f"{base}/requests.json?service_code=0102&status=open")
    assert request_id in [r["service_request_id"] for r in json.loads(body)]
    status, _, body = call(f"{base}/requests.json?service_code=0102&status=closed")
    assert request_id not in [r["service_request_id"] for r in json.loads(body)]


def test_an_idempotency_key_makes_retries_safe(base):
    key = uuid.uuid4().hex
    lon, lat = inside(GRIDS[7])
    form = {"api_key": API_KEY, "service_code": "0505", "lat": lat, "long": lon, "description": "car on crossing"}
    first = call(f"{base}/requests.json", form, {"Idempotency-Key": key})
    again = call(f"{base}/requests.json", form, {"Idempotency-Key": key})
    assert (first[0], again[0]) == (201, 200)
    assert json.loads(first[2])[0]["service_request_id"] == json.loads(again[2])[0]["service_request_id"]


@pytest.mark.parametrize("form,status,message", [
    (dict(api_key="wrong"), 403, "api_key"),
    (dict(lat=None), 400, "lat is required"),
    (dict(long="east"), 400, "not a number"),
    (dict(lat=0.5, long=0.5), 404, "outside every grid"),
    (dict(service_code="9999"), 400, "unknown category"),
    (dict(media_url="javascript:alert(1)"), 400, "media_url"),
])
def test_bad_requests_get_open311_errors(base, form, status, message):
    got, _, body = post(base, **form)
    assert got == status
    [error] = json.loads(body)
    assert error["code"] == status and message in error["description"]


def test_unknown_paths_and_bad_filters(base):
    assert call(f"{base}/nothing.json")[0] == 404
    status, _, body = call(f"{base}/requests.json?status=pending")
    assert status == 400 and "open or closed" in json.loads(body)[0]["description"]
    status, _, body = call(f"{base}/requests.json?start_date=yesterday")
    assert status == 400
    status, ctype, body = call(f"{base}/requests.xml?status=pending")
    assert status == 400 and ET.fromstring(body).find("error").findtext("code") == "400"
