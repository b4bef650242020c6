"""The officer's app's pure rules: what the phone's JSON must be, the day's lists, on-site
photos carried in a history note, and what of an emergency alert the phone is shown."""
from __future__ import annotations

import uuid

import pytest

from services.console import officer_domain as rules
from services.console.attachments.store import note_with_photos, photos_in_note
from shared.errors import InvalidArgument

SHA = "c" * 64
PHOTO = {"sha256": SHA, "size_bytes": 1234, "media_type": "image/jpeg", "uri": f"gridbus://attachments/{SHA}"}


def report(**change) -> dict:
    body = {"report_id": str(uuid.uuid4()), "category_code": "0201", "title": " 小广告 ", "description": "",
            "occurred_at": "2026-11-25T08:00:00.000Z", "location": {"lon": 120.1, "lat": 30.2, "accuracy_m": 8},
            "attachments": [PHOTO]}
    return {**body, **change}


def test_a_report_from_the_phone_becomes_the_intakes_fields():
    parsed = rules.parse_report(report())
    assert parsed["title"] == "小广告" and parsed["occurred_at"].isoformat() == "2026-11-25T08:00:00+00:00"
    assert parsed["location"] == {"lon": 120.1, "lat": 30.2, "accuracy_m": 8.0} and parsed["attachments"] == [PHOTO]


@pytest.mark.parametrize("change, words", [
    ({"report_id": "42"}, "UUID"), ({"report_id": None}, "report_id"), ({"title": "  "}, "title"),
    ({"category_code": 201}, "category_code"), ({"occurred_at": "2026-11-25T08:00:00"}, "offset"),
    ({"location": {"lon": "120", "lat": 30, "accuracy_m": 1}}, "lon"),
    ({"location": {"lon": float("nan"), "lat": 30, "accuracy_m": 1}}, "lon"),
    ({"location": {"lon": True, "lat": 30, "accuracy_m": 1}}, "lon"),
    ({"attachments": {"a": 1}}, "list"), ({"attachments": [{**PHOTO, "size_bytes": "9"}]}, "whole number"),
])
def test_a_malformed_report_names_what_is_wrong(change, words):
    with pytest.raises(InvalidArgument, match=words):
        rules.parse_report(report(**change))


def test_case_actions_take_their_version_note_and_photos():
    assert rules.parse_case_action("verify", {"version": 3}) == {"version": 3, "note": "", "photos": []}
    assert rules.parse_case_action("reopen", {"version": 3, "note": "没修好", "attachments": [PHOTO]})["photos"] == [PHOTO]
    for name, body in [("reopen", {"version": 3}), ("close", {"version": 3}), ("verify", {"version": 0}),
                       ("verify", {"version": True}), ("verify", {"version": 1, "attachments": [PHOTO] * 4})]:
        with pytest.raises(InvalidArgument):
            rules.parse_case_action(name, body)


def test_on_site_photos_travel_in_the_note_and_come_back_out():
    note = note_with_photos("已清理", [PHOTO, {**PHOTO, "sha256": "d" * 64, "uri": "gridbus://attachments/" + "d" * 64,
                                           "media_type": "image/png"}])
    assert note.splitlines()[0] == "已清理"
    assert photos_in_note(note) == [(SHA, "image/jpeg"), ("d" * 64, "image/png")]
    assert photos_in_note("gridbus://attachments/xyz image/png\nhttps://x/y image/png") == []
    assert photos_in_note(None) == []


@pytest.mark.parametrize("status, reporter, expected", [
    ("resolved", "someone", "verify"), ("resolved", "me", "verify"),
    ("rejected", "me", "rework"), ("rejected", "someone", None),
    ("reported", "me", "open"), ("in_progress", "me", "open"), ("reopened", "me", "open"),
    ("reported", "someone", None), ("closed", "me", None), ("verified", "me", "open"),
])
def test_each_case_goes_in_one_list_of_the_day(status, reporter, expected):
    assert rules.list_of({"status": status, "reporter_id": reporter}, "me") == expected


ALERT = {"id": "a1", "incident_id": "i1", "category": "0401", "title": "0401 in 330102001002003", "lon": 120.17,
         "lat": 30.03, "stage": "near", "status": "accepted", "deadline": None, "opened_at": "2026-11-25T08:00:00Z",
         "accepted_by": "o-2", "accepted_by_name": "钱网格",
         "recipients": [{"member_id": "o-1", "stage": "near", "distance_m": 410.0, "answer": None, "reason": None},
                        {"member_id": "o-2", "stage": "near", "distance_m": 420.0, "answer": "accepted",
                         "reason": None}]}


def test_an_officer_sees_their_own_part_of_an_alert_and_who_took_it():
    seen = rules.alert_for("o-1", ALERT)
    assert "recipients" not in seen and "accepted_by" not in seen  # nothing of the other officers but the name
    assert (seen["distance_m"], seen["answer"], seen["taken_by_me"], seen["accepted_by_name"]) == \
        (410.0, None, False, "钱网格")
    assert rules.alert_for("o-2", ALERT)["taken_by_me"] is True


def test_the_streams_notices_become_the_same_alert():
    notice = {"type": "emergencies.alert.sent", "alert_id": "a1", "incident_id": "i1", "category": "0401",
              "title": "t", "lon": 120.17, "lat": 30.03, "stage": "near", "distance_m": 410.0, "accepted_by": None,
              "accepted_by_name": None, "reason": None}
    sent = rules.alert_from_notice("o-1", notice)
    assert (sent["id"], sent["status"], sent["distance_m"], sent["taken_by_me"]) == ("a1", "open", 410.0, False)
    taken = rules.alert_from_notice("o-1", {**notice, "type": "emergencies.alert.accepted", "accepted_by": "o-2",
                                            "accepted_by_name": "钱网格"})
    assert (taken["status"], taken["accepted_by_name"], taken["taken_by_me"]) == ("accepted", "钱网格", False)
    gone = rules.alert_from_notice("o-1", {**notice, "type": "emergencies.alert.withdrawn",
                                           "reason": "the incident was voided"})
    assert (gone["status"], gone["reason"]) == ("withdrawn", "the incident was voided")
    assert rules.alert_from_notice("o-1", {**notice, "type": "emergencies.alert.escalated"}) is None


def test_a_decline_reason_is_optional_and_short():
    assert rules.parse_decline({}) == "" and rules.parse_decline({"reason": " 太远 "}) == "太远"
    with pytest.raises(InvalidArgument):
        rules.parse_decline({"reason": "x" * 201})
    with pytest.raises(InvalidArgument):
        rules.parse_decline({"reason": 3})
