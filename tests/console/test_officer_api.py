"""The officer's app's API on the real services: its own sign-in, photo uploads to the attachment
store (stripped of their location, stored once, type and size checked), and the console showing
a case's photos through short-lived signed links only to those who may read the case."""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gridbus.incidents.v1 import incidents_pb2 as ipb
from services.console.attachments.images import location_of
from tests.console.conftest import DISTRICT, OTHER_DISTRICT, officer_member, officer_signed_in, signed_in
from tests.incidents.conftest import GRIDS, report_request
from tests.support import metadata, token

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


def test_a_photo_is_stored_once_without_its_location(officer, photo_dir):
    first = upload(officer, WITH_GPS, "image/jpeg")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["uri"] == f"gridbus://attachments/{body['sha256']}" and body["media_type"] == "image/jpeg"
    again = upload(officer, WITH_GPS, "image/jpeg")
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
