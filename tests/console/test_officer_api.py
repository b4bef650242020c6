"""The officer's app's API on the real services: its own sign-in, photo uploads to the attachment
store (stripped of their location, stored once, type and size checked), and the console showing
a case's photos through short-lived signed links only to those who may read the case."""
from __future__ import annotations

import io
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from PIL import Image

from gridbus.incidents.v1 import incidents_pb2 as ipb
from services.console.attachments.images import location_of
from services.incidents import operations as incident_ops
from services.incidents.domain import Request
from tests.conftest import SYSTEM
from tests.console.conftest import (ACCESS_TTL_S, DISTRICT, OTHER_DISTRICT, PASSWORD, UNROUTED_CATEGORY,
                                    member_with_password, officer_member, officer_signed_in, signed_in)
from tests.incidents.conftest import GRIDS, inside, report_request
from tests.support import metadata, token, wait_for

GRID = GRIDS[3]
PHOTOS = Path(__file__).parent / "photos"
WITH_GPS = (PHOTOS / "street-with-gps.jpg").read_bytes()
PNG = (PHOTOS / "drain.png").read_bytes()


@pytest.fixture(scope="module")
def base(console_stack):
    return console_stack["base"]


@pytest.fixture(scope="module")
def officer_id(console_stack):
    return officer_member(GRID, "李网格")


@pytest.fixture(scope="module")
def officer(base, officer_id):
    with officer_signed_in(base, GRID, officer_id) as client:
        yield client


def resolve(incident_id: str) -> dict:
    """A department's work done on the case (as the services relay it): dispatched, accepted, resolved."""
    view = None
    for req in (Request("dispatch", department_code="CG-ADVERTISING"), Request("accept"), Request("resolve")):
        view = incident_ops.transition(SYSTEM, incident_id, 0, req)
    return {"id": incident_id, "version": view.version, "status": view.status}


def upload(client, data: bytes, media_type: str) -> httpx.Response:
    return client.post("/api/officer/attachments", content=data, headers={"Content-Type": media_type})


def test_an_officer_signs_in_to_the_app_with_a_cookie_of_its_own(base, officer_id):
    answer = httpx.post(base + "/api/officer/session", json={"token": token("officer", GRID, member_id=officer_id)})
    assert answer.status_code == 200, answer.text
    assert answer.headers["set-cookie"].startswith("gridbus_officer=")
    body = answer.json()
    assert body["role"] == "officer" and [u["code"] for u in body["scope"]] == [GRID]
    assert body["member"]["name"] == "李网格" and body["member"]["on_duty"] is False
    # the officer's cookie opens nothing of the console's, and a dispatcher cannot use the app
    assert httpx.get(base + "/api/incidents", cookies=answer.cookies).status_code == 401
    refused = httpx.post(base + "/api/officer/session", json={"token": token("dispatcher", DISTRICT)})
    assert refused.status_code == 403 and "grid officers" in refused.json()["error"]["message"]


def test_an_officer_signs_in_with_phone_and_password_for_the_shift_and_signs_out(base):
    o = member_with_password("officer", GRID, "赵网格")
    with httpx.Client(base_url=base, timeout=20) as phone:
        answer = phone.post("/api/officer/session", json={"login": o.phone, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        assert answer.json()["member"]["id"] == o.id
        signed_in_at = time.time()
        # Past the first access token's life the app still works: the console renewed it.
        wait_for(lambda: time.time() > signed_in_at + ACCESS_TTL_S + 1
                 and phone.get("/api/officer/cases").status_code == 200,
                 timeout=ACCESS_TTL_S + 20, interval=0.5, what="the officer's cases past the access token's life")
        wrong = httpx.post(base + "/api/officer/session", json={"login": o.phone, "password": "not-my-password"})
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "UNAUTHENTICATED")
        out = phone.delete("/api/officer/session", headers={"X-CSRF-Token": answer.json()["csrf"]})
        assert out.status_code == 200
        assert phone.get("/api/officer/cases").status_code == 401
    d = member_with_password("dispatcher", DISTRICT, "Not An Officer")
    refused = httpx.post(base + "/api/officer/session", json={"login": d.username, "password": PASSWORD})
    assert refused.status_code == 403 and "grid officers" in refused.json()["error"]["message"]


def fresh_photo() -> bytes:
    """The street photo with its GPS block and a description no other test's copy has."""
    with Image.open(io.BytesIO(WITH_GPS)) as image:
        exif = image.getexif()
        exif[0x010E] = uuid.uuid4().hex
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90, exif=exif)
    assert location_of(out.getvalue())
    return out.getvalue()


def test_a_photo_is_stored_once_without_its_location(officer, photo_dir):
    photo = fresh_photo()
    first = upload(officer, photo, "image/jpeg")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["uri"] == f"gridbus://attachments/{body['sha256']}" and body["media_type"] == "image/jpeg"
    again = upload(officer, photo, "image/jpeg")
    assert again.status_code == 200 and again.json() == {**body, "created": False}
    stored = [p for p in Path(photo_dir).rglob(f"{body['sha256']}.*")]
    assert len(stored) == 1 and stored[0].stat().st_size == body["size_bytes"]
    assert location_of(stored[0].read_bytes()) == {}


@pytest.mark.parametrize("data, media_type, status, code", [
    (WITH_GPS, "image/png", 400, "INVALID_ARGUMENT"),
    (b"%PDF-1.7 not a photo", "image/jpeg", 400, "INVALID_ARGUMENT"),
    (WITH_GPS, "application/pdf", 403, "PERMISSION_DENIED"),  # not an upload type at all
    (b"\xff\xd8" + b"\0" * (10 * 1024 * 1024 + 1), "image/jpeg", 413, "PAYLOAD_TOO_LARGE"),
])
def test_what_is_not_a_photo_is_refused_and_nothing_is_stored(officer, photo_dir, data, media_type, status, code):
    before = sorted(Path(photo_dir).rglob("*"))
    answer = upload(officer, data, media_type)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    assert sorted(Path(photo_dir).rglob("*")) == before


def test_uploads_need_the_officers_session_and_its_csrf_token(base, officer):
    assert httpx.post(base + "/api/officer/attachments", content=PNG,
                      headers={"Content-Type": "image/png"}).status_code == 401
    with signed_in(base, DISTRICT) as dispatcher:  # the console's session is not the app's
        assert upload(dispatcher, PNG, "image/png").status_code == 401
    answer = httpx.post(base + "/api/officer/attachments", content=PNG, cookies=officer.cookies,
                        headers={"Content-Type": "image/png"})
    assert answer.status_code == 403 and "CSRF" in answer.json()["error"]["message"]


def test_the_console_shows_a_cases_photos_through_signed_links_to_those_who_may_read_it(base, officer, officer_id,
                                                                                        incidents_stub):
    photos = [upload(officer, WITH_GPS, "image/jpeg").json(), upload(officer, PNG, "image/png").json()]
    req = report_request(GRID, title="井盖破损")
    req.attachments.extend(ipb.Attachment(sha256=p["sha256"], size_bytes=p["size_bytes"], media_type=p["media_type"],
                                          uri=p["uri"]) for p in photos)
    incident = incidents_stub.Report(req, metadata=metadata(token("officer", GRID, member_id=officer_id))).incident
    with signed_in(base, DISTRICT) as dispatcher:
        case = dispatcher.get(f"/api/incidents/{incident.id}").json()
    shown = case["incident"]["attachments"]
    assert [a["sha256"] for a in shown] == [p["sha256"] for p in photos]
    for a, photo in zip(shown, photos):
        assert a["url"].startswith("/attachments/") and "sig=" in a["url"]
        answer = httpx.get(base + a["url"])
        assert answer.status_code == 200 and answer.headers["content-type"] == photo["media_type"]
        assert len(answer.content) == photo["size_bytes"]
        assert "private" in answer.headers["cache-control"]
    assert location_of(httpx.get(base + shown[0]["url"]).content) == {}
    forged = shown[0]["url"].replace("sig=", "sig=0")
    assert httpx.get(base + forged).status_code == 404
    with signed_in(base, OTHER_DISTRICT) as stranger:  # may not read the case, so gets no link
        refused = stranger.get(f"/api/incidents/{incident.id}")
        assert refused.status_code == 403 and "/attachments/" not in refused.text


def report_body(report_id: str | None = None, photos: list[dict] = (), **overrides) -> dict:
    lon, lat = inside(GRID)
    return {"report_id": report_id or str(uuid.uuid4()), "category_code": UNROUTED_CATEGORY, "title": "小广告",
            "description": "电线杆上贴满了小广告", "occurred_at": datetime.now(timezone.utc).isoformat(),
            "location": {"lon": lon, "lat": lat, "accuracy_m": 12}, "attachments": list(photos), **overrides}


def test_a_report_sent_twice_is_one_incident_with_its_photo(officer, officer_id, incidents_stub):
    photo = upload(officer, WITH_GPS, "image/jpeg").json()
    body = report_body(photos=[photo])
    first = officer.post("/api/officer/reports", json=body)
    assert first.status_code == 201, first.text
    again = officer.post("/api/officer/reports", json=body)  # the phone retrying after a lost answer
    assert again.status_code == 200 and again.json()["replayed"] is True
    incident = first.json()["incident"]
    assert again.json()["incident"]["id"] == incident["id"]
    assert incident["reporter_id"] == officer_id and incident["grid_code"] == GRID
    assert [a["uri"] for a in incident["attachments"]] == [photo["uri"]]


@pytest.mark.parametrize("change, status, words", [
    ({"report_id": "not-a-uuid"}, 400, "UUID"),
    ({"location": None}, 400, "location"),
    ({"title": ""}, 400, "title"),
    ({"occurred_at": "yesterday"}, 400, "ISO 8601"),
    ({"attachments": [{"sha256": "x"}]}, 400, "needs"),
    ({"location": {"lon": 0.1, "lat": 0.1, "accuracy_m": 5}}, 404, "grid"),   # the services' own check
])
def test_a_bad_report_is_refused_in_words_and_nothing_is_made(officer, change, status, words):
    body = report_body(**change)
    answer = officer.post("/api/officer/reports", json=body)
    assert answer.status_code == status and words in answer.json()["error"]["message"]


def test_the_officers_day_lists_what_waits_for_them(officer, officer_id, incidents_stub):
    mine = officer.post("/api/officer/reports", json=report_body(title="我的上报")).json()["incident"]
    other = incidents_stub.Report(report_request(GRID, category=UNROUTED_CATEGORY, title="别人的已处置"),
                                  metadata=metadata(token("officer", GRID, member_id=str(uuid.uuid4())))).incident
    resolved = resolve(other.id)
    lists = officer.get("/api/officer/cases").json()
    assert mine["id"] in [c["id"] for c in lists["open"]]
    assert resolved["id"] in [c["id"] for c in lists["verify"]]
    assert other.id not in [c["id"] for c in lists["open"]]  # someone else's open report is theirs


def test_a_resolved_case_is_verified_on_site_with_a_photo_the_console_then_shows(base, officer, incidents_stub):
    case = incidents_stub.Report(report_request(GRID, category=UNROUTED_CATEGORY, title="待核查"),
                                 metadata=metadata(token("officer", GRID, member_id=str(uuid.uuid4())))).incident
    resolved = resolve(case.id)
    photo = upload(officer, PNG, "image/png").json()
    answer = officer.post(f"/api/officer/cases/{case.id}/verify",
                          json={"version": resolved["version"], "note": "已清理干净", "attachments": [photo]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["incident"]["status"] == "verified"
    stale = officer.post(f"/api/officer/cases/{case.id}/verify", json={"version": resolved["version"]})
    assert stale.status_code == 409
    with signed_in(base, DISTRICT) as dispatcher:
        history = dispatcher.get(f"/api/incidents/{case.id}").json()["history"]
    verified = history[-1]
    assert verified["action"] == "verify" and verified["note"].startswith("已清理干净")
    [link] = verified["photos"]
    served = httpx.get(base + link)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert len(served.content) == photo["size_bytes"]


@pytest.mark.parametrize("action, body, status", [
    ("reopen", {"version": 1}, 400),                     # sending back needs a note
    ("close", {"version": 1}, 400),                      # not the officer's
    ("verify", {"version": "1"}, 400),
    ("verify", {"version": 1, "attachments": [{"sha256": "a" * 64, "size_bytes": 1, "media_type": "image/png",
                                               "uri": "https://elsewhere.example/x.png"}]}, 400),
])
def test_the_apps_actions_take_only_what_they_need(officer, action, body, status):
    answer = officer.post(f"/api/officer/cases/{uuid.uuid4()}/{action}", json=body)
    assert answer.status_code == status, answer.text


def test_positions_are_taken_on_duty_only(officer, officer_id):
    lon, lat = inside(GRID)
    off = officer.post("/api/officer/position", json={"lon": lon, "lat": lat})
    assert off.status_code == 409 and "off duty" in off.json()["error"]["message"]
    assert officer.put("/api/officer/duty", json={"on_duty": True}).json()["member"]["on_duty"] is True
    try:
        sent = officer.post("/api/officer/position", json={"lon": lon, "lat": lat})
        assert sent.status_code == 200 and sent.json()["grid_code"] == GRID
        assert officer.get("/api/officer/session").json()["member"]["position"]["lon"] == pytest.approx(lon)
    finally:
        assert officer.put("/api/officer/duty", json={"on_duty": False}).json()["member"]["on_duty"] is False
    assert officer.post("/api/officer/position", json={"lon": lon, "lat": lat}).status_code == 409
    assert officer.put("/api/officer/duty", json={"on_duty": "yes"}).status_code == 400
