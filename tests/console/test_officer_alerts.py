"""The officer's app's emergency alerts on the real services: the console holds each officer's
WatchAlerts stream and passes it on as server-sent events; an officer sees and answers only the
alerts that reached them, the first to accept takes it and the others are told who did."""
from __future__ import annotations

import json
import queue
import threading
import uuid

import httpx
import pytest
from sqlalchemy import text

from tests.console.conftest import officer_member, officer_signed_in, report
from tests.incidents.conftest import GRIDS, inside
from tests.support import wait_for

GRID, FAR_GRID = GRIDS[6], GRIDS[-1]
URGENT_CATEGORY = "0401"  # road collapse: priority 1, so it alerts the nearest officers


class AlertStream:
    """An officer's /api/officer/alerts/stream read in a thread, its events in a queue."""

    def __init__(self, client: httpx.Client):
        self.events: queue.Queue = queue.Queue()
        self._response = client.send(client.build_request("GET", "/api/officer/alerts/stream"), stream=True)
        assert self._response.status_code == 200, self._response.read()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.next("ready")["member_id"]  # bound: every alert from now on comes

    def _read(self):
        name = "message"
        try:
            for line in self._response.iter_lines():
                if line.startswith("event: "):
                    name = line[len("event: "):]
                elif line.startswith("data: "):
                    self.events.put((name, json.loads(line[len("data: "):])))
                    name = "message"
        except httpx.HTTPError:
            pass
        self.events.put(("closed", {"closed": True}))

    def next(self, name: str, where=lambda data: True) -> dict:
        def arrived():
            got, data = self.events.get(timeout=0.2)
            return got == name and where(data) and data
        return wait_for(arrived, 30, what=f"a {name} event")

    def close(self):
        self._response.close()


def on_duty_at(client: httpx.Client, where: tuple[float, float]) -> None:
    assert client.put("/api/officer/duty", json={"on_duty": True}).status_code == 200
    answer = client.post("/api/officer/position", json={"lon": where[0], "lat": where[1]})
    assert answer.status_code == 200, answer.text


def emergencies_knows(*members: str) -> bool:
    """The emergencies service has taken in grid's events: each officer on duty, with a position."""
    from shared.db import session_scope
    with session_scope() as db:
        rows = db.execute(text("SELECT member_id FROM emergencies.officers WHERE member_id = ANY(:m) "
                               "AND on_duty AND position IS NOT NULL"), {"m": list(members)}).all()
    return len(rows) == len(members)


def answer_of(alert_id: str, member_id: str) -> str | None:
    from shared.db import session_scope
    with session_scope() as db:
        return db.execute(text("SELECT answer FROM emergencies.recipients WHERE alert_id = :a AND member_id = :m"),
                          {"a": alert_id, "m": member_id}).scalar()


@pytest.fixture(scope="module")
def crew(console_stack):
    """Two officers on duty in the grid and one far away, each signed in to the app."""
    base = console_stack["base"]
    ids = {"zhao": officer_member(GRID, "赵网格"), "qian": officer_member(GRID, "钱网格"),
           "far": officer_member(FAR_GRID, "孙网格")}
    with officer_signed_in(base, GRID, ids["zhao"]) as zhao, officer_signed_in(base, GRID, ids["qian"]) as qian, \
            officer_signed_in(base, FAR_GRID, ids["far"]) as far:
        on_duty_at(zhao, inside(GRID, 0.5, 0.45))
        on_duty_at(qian, inside(GRID, 0.5, 0.55))
        on_duty_at(far, inside(FAR_GRID))
        wait_for(lambda: emergencies_knows(*ids.values()), 60, what="emergencies knows the officers")
        yield ids, {"zhao": zhao, "qian": qian, "far": far}


def test_an_urgent_report_reaches_the_officers_near_it_and_the_first_to_accept_takes_it(crew, incidents_stub):
    ids, phones = crew
    zhao, qian = AlertStream(phones["zhao"]), AlertStream(phones["qian"])
    incident = report(incidents_stub, GRID, category=URGENT_CATEGORY, title="路面塌陷")
    sent = zhao.next("alert", lambda a: a["incident_id"] == incident.id)
    assert sent["status"] == "open" and sent["category"] == URGENT_CATEGORY and 0 < sent["distance_m"] < 1000
    assert "recipients" not in sent  # the phone is shown only its own part of the alert
    alert_id = sent["id"]
    assert qian.next("alert", lambda a: a["id"] == alert_id)["status"] == "open"

    # the far officer was not reached: they may neither read nor answer it
    assert phones["far"].get(f"/api/officer/alerts/{alert_id}").status_code == 403
    refused = phones["far"].post(f"/api/officer/alerts/{alert_id}/accept", json={})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "PERMISSION_DENIED")

    taken = phones["qian"].post(f"/api/officer/alerts/{alert_id}/accept", json={})
    assert taken.status_code == 200, taken.text
    alert = taken.json()["alert"]
    assert (alert["status"], alert["taken_by_me"], alert["accepted_by_name"]) == ("accepted", True, "钱网格")
    late = phones["zhao"].post(f"/api/officer/alerts/{alert_id}/accept", json={})
    assert (late.status_code, late.json()["error"]["code"]) == (409, "FAILED_PRECONDITION")
    told = zhao.next("alert", lambda a: a["id"] == alert_id and a["status"] == "accepted")
    assert told["accepted_by_name"] == "钱网格" and told["taken_by_me"] is False
    mine = phones["qian"].get(f"/api/officer/alerts/{alert_id}").json()["alert"]
    assert mine["taken_by_me"] and mine["lon"] == pytest.approx(sent["lon"]) and mine["incident_id"] == incident.id
    assert answer_of(alert_id, ids["qian"]) == "accepted"
    for stream in (zhao, qian):
        stream.close()


def test_declining_is_recorded_with_its_reason(crew, incidents_stub):
    ids, phones = crew
    zhao = AlertStream(phones["zhao"])  # qian is busy on the first case: only zhao is near
    incident = report(incidents_stub, GRID, category=URGENT_CATEGORY, title="燃气泄漏")
    alert_id = zhao.next("alert", lambda a: a["incident_id"] == incident.id)["id"]
    too_long = phones["zhao"].post(f"/api/officer/alerts/{alert_id}/decline", json={"reason": "x" * 201})
    assert (too_long.status_code, too_long.json()["error"]["code"]) == (400, "INVALID_ARGUMENT")
    declined = phones["zhao"].post(f"/api/officer/alerts/{alert_id}/decline", json={"reason": "正在处理另一起"})
    assert declined.status_code == 200 and declined.json()["alert"]["answer"] == "declined"
    assert answer_of(alert_id, ids["zhao"]) == "declined"
    zhao.close()


def test_an_alert_whose_case_ends_first_is_withdrawn_on_the_phone(crew, incidents_stub):
    from services.emergencies import operations as emergency_ops
    ids, phones = crew
    zhao = AlertStream(phones["zhao"])
    incident = report(incidents_stub, GRID, category=URGENT_CATEGORY, title="井盖缺失")
    alert_id = zhao.next("alert", lambda a: a["incident_id"] == incident.id)["id"]
    # the case ends before anyone accepts (as incidents' event would tell emergencies)
    emergency_ops.on_incident_event({"id": str(uuid.uuid4()), "type": "incidents.incident.voided",
                                     "data": {"incident_id": incident.id}})
    gone = zhao.next("alert", lambda a: a["id"] == alert_id and a["status"] == "withdrawn")
    assert gone["reason"] == "the incident was voided"
    late = phones["zhao"].post(f"/api/officer/alerts/{alert_id}/accept", json={})
    assert (late.status_code, late.json()["error"]["code"]) == (409, "FAILED_PRECONDITION")
    assert "withdrawn" in late.json()["error"]["message"]
    zhao.close()


def test_alerts_need_the_officers_session_and_changes_its_csrf_token(console_stack, crew):
    base = console_stack["base"]
    _, phones = crew
    assert httpx.get(base + "/api/officer/alerts/stream").status_code == 401
    no_csrf = httpx.post(base + "/api/officer/alerts/00000000-0000-0000-0000-000000000000/accept", json={},
                         cookies=phones["zhao"].cookies)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]["message"]
    bad = phones["zhao"].get("/api/officer/alerts/not-an-id")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "INVALID_ARGUMENT")


def test_signing_out_ends_the_alert_stream(console_stack):
    member = officer_member(GRID, "李网格")
    with officer_signed_in(console_stack["base"], GRID, member) as phone:
        stream = AlertStream(phone)
        assert phone.delete("/api/officer/session").status_code == 200
        assert stream.next("closed")["closed"]
        assert phone.get("/api/officer/alerts/stream").status_code == 401
