"""Console rules: no server needed."""
from datetime import datetime, timedelta, timezone

import pytest

from services.console import domain
from shared.auth import Principal
from shared.errors import InvalidArgument

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)
DISPATCHER = Principal("d1", "dispatcher", ("330102",))
ADMIN = Principal("a1", "admin", ("330100",))
LINEAGE = ["330100", "330102", "330102001", "330102001001", "330102001001001"]


def test_names_split_into_their_two_languages():
    assert domain.split_name("市容环境 City appearance and environment") == {"zh": "市容环境", "en": "City appearance and environment"}
    assert domain.split_name("城管环卫 Sanitation") == {"zh": "城管环卫", "en": "Sanitation"}
    assert domain.split_name("District 1") == {"zh": "District 1", "en": "District 1"}


def test_the_filter_defaults_to_open_cases_and_refuses_what_it_cannot_mean():
    f = domain.parse_filter({})
    assert set(f.statuses) == {"reported", "dispatched", "in_progress", "resolved", "verified", "reopened"}
    assert not f.needs_tasks_first and f.limit == domain.DEFAULT_ROWS
    f = domain.parse_filter({"status": "closed,rejected", "unit": "330102001", "overdue": "true",
                             "from": "2026-11-20T00:00:00+08:00", "bbox": "120,30,120.4,30.3", "limit": "50"})
    assert f.statuses == ("closed", "rejected") and f.overdue and f.needs_tasks_first
    assert f.bbox == (120.0, 30.0, 120.4, 30.3) and f.reported_from.utcoffset() == timedelta(hours=8)
    for bad in ({"status": "lost"}, {"category": "0-1"}, {"unit": "12"}, {"overdue": "maybe"}, {"bbox": "1,2,3"},
                {"limit": "0"}, {"from": "yesterday"}, {"from": "2026-11-20T00:00:00"},
                {"from": "2026-11-21T00:00:00Z", "to": "2026-11-20T00:00:00Z"}):
        with pytest.raises(InvalidArgument):
            domain.parse_filter(bad)


def test_a_saved_filter_holds_only_the_filters_keys():
    assert domain.check_saved_filter(" 早班 ", {"overdue": "true", "unit": ""}) == ("早班", {"overdue": "true"})
    with pytest.raises(InvalidArgument):
        domain.check_saved_filter("", {})
    with pytest.raises(InvalidArgument):
        domain.check_saved_filter("x", {"bbox": "1,2,3,4"})
    with pytest.raises(InvalidArgument):
        domain.check_saved_filter("x", {"status": "lost"})


def _row(reported_minutes_ago: int, level: int = 0, due_minutes: int | None = None) -> dict:
    at = (NOW - timedelta(minutes=reported_minutes_ago)).isoformat()
    task = None if due_minutes is None and not level else {
        "status": "assigned", "escalation_level": level,
        "next_due_at": (NOW + timedelta(minutes=due_minutes)).isoformat() if due_minutes is not None else None}
    return {"incident": {"id": f"{reported_minutes_ago}-{level}-{due_minutes}", "reported_at": at}, "task": task}


def test_the_queue_puts_the_escalated_and_the_overdue_first_then_the_newest():
    rows = [_row(5), _row(50, due_minutes=-10), _row(1), _row(30, level=2, due_minutes=20),
            _row(40, level=1, due_minutes=-5), _row(10, due_minutes=60)]
    ordered = [r["incident"]["id"] for r in domain.order_queue(rows, NOW)]
    assert ordered == ["30-2-20", "40-1--5", "50-0--10", "1-0-None", "5-0-None", "10-0-60"]
    flags = {r["incident"]["id"]: (r["urgent"], r["overdue"]) for r in rows}
    assert flags["50-0--10"] == (True, True) and flags["30-2-20"] == (True, False) and flags["10-0-60"] == (False, False)


def test_the_queue_filters_on_the_tasks_facts():
    overdue, fine = _row(5, due_minutes=-1), _row(5, due_minutes=10)
    f = domain.parse_filter({"overdue": "true"})
    assert domain.keep(overdue, f, NOW) and not domain.keep(fine, f, NOW)
    manual = {"incident": {}, "task": {"status": "queued", "escalation_level": 0, "next_due_at": None}}
    assert domain.keep(manual, domain.parse_filter({"manual": "true"}), NOW)
    assert not domain.keep(fine, domain.parse_filter({"manual": "true"}), NOW)
    assert not domain.keep({"incident": {}, "task": None}, domain.parse_filter({"escalated": "true"}), NOW)


@pytest.mark.parametrize("status, task_status, expected", [
    ("reported", "queued", ["assign", "reject", "merge", "request_void"]),
    ("reported", "assigned", ["reject", "merge", "request_void"]),
    ("dispatched", "assigned", ["reroute", "reject", "merge", "request_void", "request_supervise"]),
    ("in_progress", "acknowledged", ["reroute", "merge", "request_void", "request_park", "request_supervise"]),
    ("resolved", "resolved", ["send_back", "request_void"]),
    ("verified", "resolved", ["close", "send_back", "request_void"]),
    ("rejected", "rejected", ["close"]),
    ("closed", "closed", []),
    ("parked", "parked", ["unpark"]),  # dispatch merges open tasks only
])
def test_a_case_offers_what_the_incidents_action_table_allows(status, task_status, expected):
    incident = {"status": status, "lineage": LINEAGE}
    assert domain.available_actions(DISPATCHER, incident, {"status": task_status}) == expected


def test_no_actions_outside_the_scope_or_the_role():
    incident = {"status": "reported", "lineage": ["330100", "330103", "330103001"]}
    assert domain.available_actions(DISPATCHER, incident, {"status": "queued"}) == []
    assert domain.available_actions(ADMIN, {"status": "verified", "lineage": LINEAGE}, {"status": "resolved"}) == []
    # No task yet: nothing that dispatch does; the case's own procedures are incidents'.
    assert domain.available_actions(DISPATCHER, {"status": "reported", "lineage": LINEAGE}, None) == ["request_void"]


def test_a_waiting_request_offers_its_decision_to_the_shift_leader_and_nothing_else_to_ask():
    incident = {"status": "in_progress", "lineage": LINEAGE, "pending": "park"}
    task = {"status": "acknowledged", "pending": None}
    assert [a for a in domain.available_actions(ADMIN, incident, task) if "park" in a] == ["approve_park", "refuse_park"]
    assert not [a for a in domain.available_actions(DISPATCHER, incident, task) if a.startswith("request_")]
    supervised = {"status": "in_progress", "lineage": LINEAGE, "supervised": True}
    assert "request_supervise" not in domain.available_actions(DISPATCHER, supervised, task)
    # A department's extension request is decided by a dispatcher in scope.
    asked = {"status": "acknowledged", "pending": "extension"}
    offered = domain.available_actions(DISPATCHER, {"status": "in_progress", "lineage": LINEAGE}, asked)
    assert "approve_extension" in offered and "refuse_extension" in offered and "approve_return" not in offered


def test_each_form_asks_for_what_the_incidents_action_requires():
    needs = {name: a.needs for name, a in domain.ACTIONS.items()}
    assert {k: v for k, v in needs.items() if k in ("assign", "reroute", "reject", "merge", "close", "send_back")} == {
        "assign": ("department",), "reroute": ("department", "note"), "reject": ("note",),
        "merge": ("duplicate_of",), "close": (), "send_back": ("note",)}
    assert needs["request_park"] == ("note", "review_at") and needs["approve_extension"] == ("note",)
    assert all("note" in v for k, v in needs.items() if k.split("_")[0] in ("request", "approve", "refuse"))


def test_an_action_needs_its_reasons():
    domain.check_action_form("reject", {"note": "not a case"})
    for name, form in (("reject", {}), ("reroute", {"note": "x"}), ("merge", {}), ("fly", {})):
        with pytest.raises(InvalidArgument):
            domain.check_action_form(name, form)


def test_live_messages_carry_their_lineage_and_only_members_in_it_see_them():
    event = {"id": "e1", "type": "incidents.incident.reported", "time": "2026-11-25T09:30:00Z",
             "data": {"incident_id": "i1", "status": "reported", "lineage": LINEAGE, "grid_code": LINEAGE[-1],
                      "location": {"lon": 120.1, "lat": 30.1}, "title": "never sent"}}
    lineages, payload = domain.live_message(event)
    assert payload["kind"] == "incident" and payload["lon"] == 120.1 and "title" not in payload
    assert domain.may_see(DISPATCHER, lineages) and domain.may_see(ADMIN, lineages)
    assert not domain.may_see(Principal("d2", "dispatcher", ("330103",)), lineages)
    position = {"type": "grid.member.position_reported", "data": {"member_id": "m", "lon": 1, "lat": 2,
                                                                    "grid_code": LINEAGE[-1], "reported_at": "t"}}
    assert domain.live_message(position)[0] == [LINEAGE]
    outside = {"type": "grid.member.position_reported", "data": {"member_id": "m", "grid_code": None}}
    assert domain.live_message(outside) is None
    assert domain.live_message({"type": "credit.record.added", "data": {}}) is None
    duty = {"type": "grid.member.updated", "data": {"member_id": "m", "role": "officer", "on_duty": True,
                                                    "changed": ["on_duty"], "assignments": [{"grid_code": LINEAGE[-1]}]}}
    assert domain.live_message(duty)[1]["kind"] == "duty"


def test_the_week_starts_at_a_local_midnight_and_has_seven_days():
    start, end = domain.week(NOW, "Asia/Shanghai")
    assert (start.hour, start.minute, start.utcoffset()) == (0, 0, timedelta(hours=8))
    assert start.date().isoformat() == "2026-11-19" and end == NOW
    days = domain.days_of(start, end)
    assert len(days) == 7 and days[0][0] == start and days[-1][1] == NOW
    assert all(b - a == timedelta(days=1) for a, b in days[:-1])


def test_the_bounding_box_of_a_geometry():
    geometry = {"type": "MultiPolygon", "coordinates": [[[[120, 30], [120.2, 30], [120.2, 30.3], [120, 30]]]]}
    assert domain.bbox_of(geometry) == (120, 30, 120.2, 30.3)
    assert domain.bbox_of({"type": "MultiPolygon", "coordinates": []}) is None
