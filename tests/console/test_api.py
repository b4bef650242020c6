"""The console's JSON and event-stream API on the real services: sign-in and the session
cookie, CSRF, the member's scope, the queue, a case and its actions, live events, figures."""
from __future__ import annotations

import json
import queue
import threading
import time

import grpc
import httpx
import pytest

from gridbus.grid.v1 import grid_pb2 as gpb
from gridbus.grid.v1 import grid_pb2_grpc
from tests.console.conftest import (ACCESS_TTL_S, DISTRICT, OTHER_DISTRICT, PASSWORD, UNROUTED_CATEGORY,
                                   member_with_password, report, signed_in, wait_for)
from tests.grid.test_grpc_tiles import tile_of
from tests.incidents.conftest import GRIDS, inside
from tests.support import metadata, token, wait_for

GRID = GRIDS[1]
OTHER_GRID = GRIDS[-2]


@pytest.fixture(scope="module")
def base(console_stack):
    return console_stack["base"]


@pytest.fixture(scope="module")
def dispatcher(base):
    with signed_in(base, DISTRICT) as client:
        yield client


def test_the_page_and_its_config_are_public(base):
    config = httpx.get(base + "/api/config").json()
    assert [f["name"] for f in config["signin"]["fields"]] == ["login", "password"]
    assert config["signin"]["fields"][1]["secret"]
    assert config["time_zone"] == "Asia/Shanghai"
    page = httpx.get(base + "/queue")
    assert page.status_code == 200 and '<div id="app">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_sign_in_sets_an_http_only_strict_cookie_and_never_returns_the_token(base):
    bearer = token("dispatcher", DISTRICT, member_id="d-cookie")
    answer = httpx.post(base + "/api/session", json={"token": f"Bearer {bearer}"})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http on this machine; https gets Secure
    body = answer.json()
    assert body["role"] == "dispatcher" and body["member_id"] == "d-cookie"
    assert [u["code"] for u in body["scope"]] == [DISTRICT] and body["scope"][0]["name"] == "District 1"
    assert body["bbox"][0] < body["bbox"][2] and body["csrf"]
    assert bearer not in answer.text and bearer.split(".")[1] not in answer.headers["set-cookie"]


def _refresh_tokens_used(member_id: str) -> int:
    from sqlalchemy import text
    from shared.db import session_scope
    with session_scope() as session:
        return session.scalar(text("SELECT count(*) FROM grid.refresh_tokens WHERE member_id = :m "
                                   "AND used_at IS NOT NULL"), {"m": member_id})


def test_a_dispatcher_signs_in_with_a_password_and_stays_signed_in_past_the_access_tokens_life(base):
    d = member_with_password("dispatcher", DISTRICT, "Password Dispatcher")
    with httpx.Client(base_url=base, timeout=20) as client:
        for login in (d.phone, d.username):
            answer = client.post("/api/session", json={"login": login, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["member_id"] == d.id and body["role"] == "dispatcher"
            assert not any("token" in key for key in body)  # neither token reaches the browser
            assert len(answer.cookies["gridbus_console"]) < 100  # the cookie names the session, nothing more
        signed_in_at = time.time()
        # The access token lives ACCESS_TTL_S; the console renews it, so the session goes on past it.
        wait_for(lambda: time.time() > signed_in_at + ACCESS_TTL_S + 1 and client.get("/api/session").status_code == 200,
                 timeout=ACCESS_TTL_S + 20, interval=0.5, what="a call past the first access token's expiry")
        assert client.get("/api/incidents").status_code == 200
        assert _refresh_tokens_used(d.id) >= 1


@pytest.mark.parametrize("body, status, code", [
    ({"login": "nobody-at-all", "password": "whatever-it-is"}, 401, "UNAUTHENTICATED"),
    ({"login": "", "password": "whatever-it-is"}, 400, "INVALID_ARGUMENT"),
    ({"login": "someone", "password": ""}, 400, "INVALID_ARGUMENT"),
])
def test_a_wrong_or_missing_password_signs_nobody_in(base, body, status, code):
    answer = httpx.post(base + "/api/session", json=body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    assert "set-cookie" not in answer.headers


def test_an_officer_cannot_sign_in_to_the_console_and_their_session_at_grid_is_ended(base, console_stack):
    o = member_with_password("officer", GRIDS[0], "Console Officer")
    answer = httpx.post(base + "/api/session", json={"login": o.username, "password": PASSWORD})
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "PERMISSION_DENIED")
    from sqlalchemy import text
    from shared.db import session_scope
    with session_scope() as session:  # the refresh token grid gave the console was signed out at once
        live = session.scalar(text("SELECT count(*) FROM grid.refresh_tokens WHERE member_id = :m "
                                   "AND revoked_at IS NULL"), {"m": o.id})
    assert live == 0


def test_signing_out_ends_the_session_at_grid_too(base, console_stack):
    d = member_with_password("dispatcher", DISTRICT, "Leaving Dispatcher")
    with httpx.Client(base_url=base, timeout=20) as client:
        answer = client.post("/api/session", json={"login": d.phone, "password": PASSWORD})
        assert answer.status_code == 200
        assert client.delete("/api/session", headers={"X-CSRF-Token": answer.json()["csrf"]}).status_code == 200
        assert client.get("/api/session").status_code == 401
    from sqlalchemy import text
    from shared.db import session_scope
    with session_scope() as session:
        live = session.scalar(text("SELECT count(*) FROM grid.refresh_tokens WHERE member_id = :m "
                                   "AND revoked_at IS NULL AND used_at IS NULL"), {"m": d.id})
    assert live == 0


@pytest.mark.parametrize("body, status, code", [
    ({"token": "not-a-token"}, 401, "UNAUTHENTICATED"),
    ({"token": ""}, 400, "INVALID_ARGUMENT"),
    ({"token": token("officer", GRIDS[0])}, 403, "PERMISSION_DENIED"),
    ({"token": token("department", DISTRICT, member_id="CG-SANITATION")}, 403, "PERMISSION_DENIED"),
])
def test_bad_tokens_and_other_roles_cannot_sign_in(base, body, status, code):
    answer = httpx.post(base + "/api/session", json=body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    assert "set-cookie" not in answer.headers


def test_sign_in_from_another_site_or_as_a_form_is_refused(base):
    good = {"token": token("dispatcher", DISTRICT)}
    answer = httpx.post(base + "/api/session", json=good, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403
    answer = httpx.post(base + "/api/session", data=good)
    assert answer.status_code == 403 and "JSON" in answer.json()["error"]["message"]


def test_a_body_past_the_limit_is_refused_unread(base):
    answer = httpx.post(base + "/api/session", json={"token": "x" * 20_000})
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_without_a_session_the_api_answers_401(base):
    for path in ("/api/session", "/api/incidents", "/api/tiles/10/853/422.pbf", "/api/events", "/api/figures"):
        answer = httpx.get(base + path)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "UNAUTHENTICATED", path


def test_changes_need_the_sessions_csrf_token(base):
    with signed_in(base, DISTRICT, member_id="d-csrf") as client:
        body = {"filter": {"status": "reported"}}
        for header in ("", "wrong"):
            answer = client.put("/api/filters/mine", json=body, headers={"X-CSRF-Token": header})
            assert answer.status_code == 403 and "CSRF" in answer.json()["error"]["message"]
        assert client.put("/api/filters/mine", json=body).status_code == 200


def test_sign_out_ends_the_session_for_good(base):
    with signed_in(base, DISTRICT, member_id="d-out") as client:
        cookie = dict(client.cookies)
        assert client.delete("/api/session").status_code == 200
        assert client.get("/api/session").status_code == 401
        assert httpx.get(base + "/api/session", cookies=cookie).status_code == 401  # the old cookie is dead too


def test_the_map_tiles_hold_only_the_members_units(base, dispatcher):
    z, x, y = tile_of(120.2, 30.15, 9)  # the whole demo city
    tile = dispatcher.get(f"/api/tiles/{z}/{x}/{y}.pbf")
    assert tile.status_code == 200 and tile.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert DISTRICT.encode() in tile.content and OTHER_DISTRICT.encode() not in tile.content
    assert dispatcher.get("/api/tiles/3/9/0.pbf").json()["error"]["code"] == "INVALID_ARGUMENT"


def test_a_manual_queue_case_escalates_to_the_top_and_the_filters_find_it(base, dispatcher, incidents_stub,
                                                                          fast_deadlines):
    incident = report(incidents_stub, GRID)
    row = wait_for(lambda: next((r for r in dispatcher.get("/api/incidents", params={"escalated": "true"}).json()["rows"]
                                 if r["incident"]["id"] == incident.id), None))
    assert row and row["task"]["status"] == "queued" and row["task"]["escalation_level"] >= 1 and row["urgent"]
    everything = dispatcher.get("/api/incidents").json()["rows"]
    urgent = [r["urgent"] for r in everything]
    assert urgent == sorted(urgent, reverse=True)  # escalated and overdue first
    manual = dispatcher.get("/api/incidents", params={"manual": "true"}).json()["rows"]
    assert incident.id in {r["incident"]["id"] for r in manual}
    assert all(r["task"]["status"] == "queued" for r in manual)
    other = dispatcher.get("/api/incidents", params={"category": "06", "status": "reported"}).json()["rows"]
    assert incident.id not in {r["incident"]["id"] for r in other}
    assert dispatcher.get("/api/incidents", params={"status": "lost"}).json()["error"]["code"] == "INVALID_ARGUMENT"


def test_assigning_a_case_moves_it_and_a_stale_version_is_aborted(base, dispatcher, incidents_stub):
    incident = report(incidents_stub, GRID)
    case = wait_for(lambda: (lambda c: c if c.get("task") else None)(dispatcher.get(f"/api/incidents/{incident.id}").json()))
    assert case["incident"]["category_code"] == UNROUTED_CATEGORY and "assign" in case["actions"]
    assert case["needs"]["assign"] == ["department"]  # the form's fields, from the action table
    assert case["reporter"] == {"id": f"officer-{GRID[-3:]}", "visible": False, "kind": "system"}
    assert [h["action"] for h in case["history"]] == ["report"]
    departments = {d["code"] for d in case["departments"]}
    assert "CG-ADVERTISING" in departments and "D2-STREET" not in departments  # serves another district
    seen = case["task"]["version"]
    answer = dispatcher.post(f"/api/incidents/{incident.id}/actions/assign",
                             json={"department": "CG-ADVERTISING", "task_version": seen})
    assert answer.status_code == 200, answer.text
    moved = wait_for(lambda: (lambda c: c if c["incident"]["status"] == "dispatched" else None)(
        dispatcher.get(f"/api/incidents/{incident.id}").json()))
    assert moved["incident"]["department_code"] == "CG-ADVERTISING" and moved["task"]["status"] == "assigned"
    assert "reroute" in moved["actions"] and "assign" not in moved["actions"]
    again = dispatcher.post(f"/api/incidents/{incident.id}/actions/reroute",
                            json={"department": "CG-STREET", "note": "wrong team", "task_version": seen})
    assert again.status_code == 409 and again.json()["error"]["code"] == "ABORTED"
    missing = dispatcher.post(f"/api/incidents/{incident.id}/actions/reroute", json={"task_version": seen})
    assert missing.status_code == 400 and "department" in missing.json()["error"]["message"]


def test_another_districts_case_is_permission_denied(base, dispatcher, incidents_stub):
    theirs = report(incidents_stub, OTHER_GRID)
    with signed_in(base, "330100", member_id="shift-leader") as leader:  # a shift leader sees the city
        case = wait_for(lambda: (lambda c: c if c.get("task") else None)(leader.get(f"/api/incidents/{theirs.id}").json()))
        assert case["incident"]["id"] == theirs.id and "assign" in case["actions"]
    answer = dispatcher.get(f"/api/incidents/{theirs.id}")
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "PERMISSION_DENIED"
    act = dispatcher.post(f"/api/incidents/{theirs.id}/actions/reject",
                          json={"note": "no", "task_version": case["task"]["version"]})
    assert act.status_code == 403 and act.json()["error"]["code"] == "PERMISSION_DENIED"
    assert theirs.id not in {r["incident"]["id"] for r in dispatcher.get("/api/incidents").json()["rows"]}


def _stream(client: httpx.Client, into: queue.Queue, ready: threading.Event) -> None:
    """Reads the console's event stream: `hello` first, then one JSON message per event; ends
    when the test closes the client."""
    try:
        with client.stream("GET", "/api/events", timeout=None) as response:
            named = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    named = line[len("event: "):]
                elif line.startswith("data: "):
                    if named == "hello":
                        ready.set()
                    else:
                        into.put(json.loads(line[len("data: "):]))
                    named = None
    except (httpx.TransportError, RuntimeError):
        return  # the test closed the client under the stream


def _first(q: queue.Queue, kind: str, timeout: float = 20.0) -> dict:
    while True:
        message = q.get(timeout=timeout)
        if message["kind"] == kind:
            return message


def test_live_events_reach_only_the_members_whose_area_they_concern(base, incidents_stub):
    mine, theirs = queue.Queue(), queue.Queue()
    readies = [threading.Event(), threading.Event()]
    with signed_in(base, DISTRICT, member_id="d-live") as a, signed_in(base, OTHER_DISTRICT, member_id="d2-live") as b:
        for client, q, ready in zip((a, b), (mine, theirs), readies):
            threading.Thread(target=_stream, args=(client, q, ready), daemon=True).start()
        assert all(r.wait(10) for r in readies)
        here = report(incidents_stub, GRID)
        there = report(incidents_stub, OTHER_GRID)
        got = _first(mine, "incident")
        assert (got["incident_id"], got["type"], got["status"]) == (here.id, "incidents.incident.reported", "reported")
        assert got["grid_code"] == GRID and got["lon"] and got["time"]
        # The bus carries `here` before `there`: had it reached the other district, it would be first.
        assert _first(theirs, "incident")["incident_id"] == there.id


def test_an_officers_position_is_pushed_to_their_districts_dispatchers(base, console_stack):
    grid_stub = grid_pb2_grpc.GridServiceStub(grpc.insecure_channel(f"127.0.0.1:{console_stack['ports']['grid']}"))
    admin = metadata(token("admin", "330100"))
    officer = grid_stub.CreateMember(gpb.CreateMemberRequest(name="Console Officer", phone="13900001111",
                                                             role=gpb.ROLE_OFFICER), metadata=admin)
    grid_stub.AssignMember(gpb.AssignMemberRequest(member_id=officer.id, grid_code=GRID), metadata=admin)
    me = metadata(token("officer", GRID, member_id=officer.id))
    grid_stub.UpdateMember(gpb.UpdateMemberRequest(id=officer.id, on_duty=True), metadata=me)
    with signed_in(base, DISTRICT, member_id="d-positions") as client:
        on_duty = client.get("/api/officers").json()["officers"]
        assert officer.id in {o["id"] for o in on_duty}
        events, ready = queue.Queue(), threading.Event()
        threading.Thread(target=_stream, args=(client, events, ready), daemon=True).start()
        assert ready.wait(10)
        lon, lat = inside(GRID, 0.3, 0.6)
        grid_stub.ReportPosition(gpb.ReportPositionRequest(member_id=officer.id, lon=lon, lat=lat), metadata=me)
        moved = _first(events, "position")
        assert (moved["member_id"], moved["grid_code"]) == (officer.id, GRID)
        assert (moved["lon"], moved["lat"]) == pytest.approx((lon, lat))
        unit = client.get(f"/api/units/{GRID}").json()
        assert unit["unit"]["level"] == "grid" and officer.id in {o["id"] for o in unit["officers"]}
        seen = next(o for o in unit["officers"] if o["id"] == officer.id)
        assert seen["phone"] == "139****1111" and seen["position"]["reported_at"]


def test_figures_for_the_week(base, dispatcher):
    figures = dispatcher.get("/api/figures").json()
    assert [r["key"] for r in figures["funnel"]] == ["reported", "filed", "dispatched", "handled", "closed"]
    assert len(figures["trend"]) == 7 and len(figures["evaluation"]["day"]) == 7
    assert figures["funnel"][0]["count"] == figures["total"] >= 3
    busiest = {r["key"]: r for r in figures["busiest_grids"]}
    assert GRID in busiest and busiest[GRID]["name"] and busiest[GRID]["count"] >= 3
    assert figures["evaluation"]["department"][-1]["key"] == "all"
    denied = dispatcher.get("/api/figures", params={"unit": OTHER_DISTRICT})
    assert denied.status_code == 403


def test_saved_filters_are_each_members_own(base, dispatcher):
    saved = dispatcher.put("/api/filters/早班超时", json={"filter": {"overdue": "true", "category": "02"}})
    assert saved.status_code == 200
    assert {"name": "早班超时", "filter": {"overdue": "true", "category": "02"}} in dispatcher.get("/api/filters").json()["filters"]
    with signed_in(base, DISTRICT, member_id="someone-else") as other:
        assert other.get("/api/filters").json()["filters"] == []
    bad = dispatcher.put("/api/filters/x", json={"filter": {"colour": "red"}})
    assert bad.status_code == 400
    assert dispatcher.delete("/api/filters/早班超时").status_code == 200
    assert dispatcher.delete("/api/filters/早班超时").status_code == 404


def test_a_side_procedure_is_asked_for_and_decided_through_the_console(base, dispatcher, incidents_stub):
    """A dispatcher asks to void a case filed in error; the admin sees the decision offered and
    approves it, with a reason; the case's timeline shows both."""
    incident = report(incidents_stub, GRID)
    case = wait_for(lambda: (lambda c: c if c.get("task") else None)(dispatcher.get(f"/api/incidents/{incident.id}").json()))
    assert "request_void" in case["actions"] and case["needs"]["request_void"] == ["note"]
    assert case["needs"]["request_park"] == ["note", "review_at"]
    missing = dispatcher.post(f"/api/incidents/{incident.id}/actions/request_void",
                              json={"incident_version": case["incident"]["version"]})
    assert missing.status_code == 400 and "note" in missing.json()["error"]["message"]
    asked = dispatcher.post(f"/api/incidents/{incident.id}/actions/request_void",
                            json={"note": "the officer reported it twice", "incident_version": case["incident"]["version"]})
    assert asked.status_code == 200, asked.text
    case = dispatcher.get(f"/api/incidents/{incident.id}").json()
    assert case["incident"]["pending"] == "void" and "approve_void" not in case["actions"]
    with signed_in(base, "330100", role="admin", member_id="centre-head") as head:
        seen = head.get(f"/api/incidents/{incident.id}").json()
        assert {"approve_void", "refuse_void"} <= set(seen["actions"]) and "request_void" not in seen["actions"]
        done = head.post(f"/api/incidents/{incident.id}/actions/approve_void",
                         json={"note": "a duplicate", "incident_version": seen["incident"]["version"]})
        assert done.status_code == 200, done.text
    voided = dispatcher.get(f"/api/incidents/{incident.id}").json()
    assert (voided["incident"]["status"], voided["incident"]["pending"], voided["actions"]) == ("voided", None, [])
    assert [h["action"] for h in voided["history"]][-2:] == ["request_void", "approve_void"]
