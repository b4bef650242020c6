"""The officer's app's pure rules: what the phone's JSON must be, the day's lists, and on-site
photos carried in a history note."""
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
