"""Open311 GeoReport v2 against the real gateway process, database and broker: the resources in
JSON and XML, API keys and Idempotency-Key, what anonymous readers see and what they do not,
and bad input answered with Open311 errors."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from xml.etree import ElementTree as ET

import pytest

from tests.incidents.conftest import GRIDS, inside
from tests.open311.conftest import API_KEY, OTHER_KEY


def call(url: str, data: dict | bytes | None = None, headers: dict | None = None):
    body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
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
    assert req["status_notes"] == "Received; being routed to the department responsible."
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
    (dict(description="  \n\t "), 400, "description is required"),
    (dict(description=None), 400, "description is required"),
    (dict(description="bins\x00"), 400, "NUL"),
    (dict(lat="nan"), 400, "lat"),
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


def test_bodies_that_are_no_utf8_form_get_400(base):
    for body, ctype, words in [
        (b"api_key=" + API_KEY.encode() + b"&service_code=0102&lat=1&long=1&description=\xff\xfe", None, "UTF-8"),
        (b"description=%FF%FE&api_key=" + API_KEY.encode(), None, "UTF-8"),
        (b"[" * 100_00 + b"]" * 100_00, "application/json", "x-www-form-urlencoded"),
        (b'{"description": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001, "application/json", "x-www-form-urlencoded"),
        (b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--", "multipart/form-data; boundary=x",
         "x-www-form-urlencoded"),
        ("&".join(f"f{i}=1" for i in range(60)).encode(), None, "more than 50 fields"),
    ]:
        headers = {"Content-Type": ctype} if ctype else {}
        status, _, answer = call(f"{base}/requests.json", body, headers)
        assert status == 400, (body[:40], answer)
        assert words in json.loads(answer)[0]["description"]


# --- what anonymous readers see ------------------------------------------------------------

def _officer_report(grid: str) -> str:
    """An officer's internal report, as the phones make them."""
    from services.incidents import operations as incidents
    from shared.auth import OFFICER, Principal
    lon, lat = inside(grid, 0.3, 0.3)
    officer = Principal("officer-open311-test", OFFICER, (grid,))
    return incidents.report(officer, report_id=str(uuid.uuid4()), category_code="0102", title="internal",
                            description="officer's internal report", lon=lon, lat=lat, accuracy_m=5.0,
                            occurred_at=datetime.now(timezone.utc)).incident.id


def test_anonymous_reads_show_only_what_was_submitted_through_open311(base):
    internal = _officer_report(GRIDS[6])
    status, _, body = post(base)
    public = json.loads(body)[0]["service_request_id"]
    status, _, body = call(f"{base}/requests/{internal}.json")
    assert status == 404 and json.loads(body)[0]["code"] == 404
    listed = [r["service_request_id"] for r in json.loads(call(f"{base}/requests.json")[2])]
    assert public in listed and internal not in listed
    by_ids = call(f"{base}/requests.json?" + urllib.parse.urlencode({"service_request_id": f"{internal},{public}"}))
    assert [r["service_request_id"] for r in json.loads(by_ids[2])] == [public]
    # A key shows its own requests in full, and nothing that is not public.
    assert call(f"{base}/requests/{internal}.json?api_key={API_KEY}")[0] == 404


def test_staff_notes_never_show_and_each_state_has_its_public_text(base):
    from services.incidents import domain
    from services.incidents import operations as incidents
    from tests.conftest import SYSTEM
    status, _, body = post(base, description="Broken bench")
    request_id = json.loads(body)[0]["service_request_id"]
    secret = f"internal reason {uuid.uuid4().hex}"
    incidents.transition(SYSTEM, request_id, 0, domain.Request("reject", note=secret))
    for fmt in ("json", "xml"):
        for url in (f"{base}/requests/{request_id}.{fmt}", f"{base}/requests.{fmt}?status=closed"):
            assert secret.encode() not in call(url)[2]
    [req] = json.loads(call(f"{base}/requests/{request_id}.json")[2])
    assert (req["status"], req["status_notes"]) == ("closed", "Closed without action.")
    from services.open311 import mapping
    assert set(mapping.PUBLIC_STATUS_NOTES) == set(domain.STATUSES)


def test_coordinates_are_rounded_for_the_public_and_exact_for_the_submitter(base):
    lon, lat = inside(GRIDS[5], 0.123456789, 0.987654321)
    status, _, body = post(base, lat=f"{lat:.9f}", long=f"{lon:.9f}")
    request_id = json.loads(body)[0]["service_request_id"]
    [anonymous] = json.loads(call(f"{base}/requests/{request_id}.json")[2])
    assert (anonymous["lat"], anonymous["long"]) == (round(lat, 4), round(lon, 4))
    assert anonymous["status_notes"] == "Received; being routed to the department responsible."
    [own] = json.loads(call(f"{base}/requests/{request_id}.json?api_key={API_KEY}")[2])
    assert (own["lat"], own["long"]) == pytest.approx((lat, lon), abs=1e-9)
    assert own["status_notes"].endswith("(gridbus status: reported)")
    [other] = json.loads(call(f"{base}/requests/{request_id}.json?api_key={OTHER_KEY}")[2])
    assert other == anonymous
    xml = ET.fromstring(call(f"{base}/requests/{request_id}.xml")[2]).find("request")
    assert (float(xml.findtext("lat")), float(xml.findtext("long"))) == (round(lat, 4), round(lon, 4))
