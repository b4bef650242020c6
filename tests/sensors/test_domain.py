"""Sensor rules alone: no database, no broker."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from services.sensors import domain
from shared.auth import Principal
from shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
GOOD = dict(id_="mh-0001", kind="manhole_cover", lon=120.05, lat=30.05, department_code="municipal",
            alarm_map={"OPEN": "0601", "SILENT": "06"}, heartbeat_seconds=300)


def test_a_good_device_is_taken_as_it_is():
    d = domain.check_device(**GOOD)
    assert (d.id, d.kind, d.alarm_map, d.heartbeat_seconds) == ("mh-0001", "manhole_cover",
                                                                {"OPEN": "0601", "SILENT": "06"}, 300)


@pytest.mark.parametrize("change, message", [
    ({"id_": "A"}, "device id"), ({"kind": "toaster"}, "kind"), ({"lon": 181.0}, "longitude"),
    ({"lat": float("nan")}, "longitude"), ({"alarm_map": {}}, "at least one"),
    ({"alarm_map": {"open": "0601", "SILENT": "06"}}, "alarm code"),
    ({"alarm_map": {"OPEN": "06-01", "SILENT": "06"}}, "category"),
    ({"alarm_map": {"OPEN": "0601"}}, "SILENT"), ({"heartbeat_seconds": -1}, "heartbeat"),
    ({"department_code": "a b"}, "department"),
])
def test_a_bad_device_is_refused_with_the_reason(change, message):
    with pytest.raises(InvalidArgument, match=message):
        domain.check_device(**{**GOOD, **change})


def test_an_alarm_is_parsed_from_its_topic_and_payload():
    body = json.dumps({"code": "OPEN", "at": "2026-11-25T15:59:00+08:00", "value": 1.5, "message": "lid up"}).encode()
    device, alarm = domain.parse_message("sensors.mh-0001.alarm", body, NOW)
    assert device == "mh-0001" and alarm.code == "OPEN" and alarm.value == 1.5 and alarm.message == "lid up"
    assert alarm.at == datetime(2026, 11, 25, 7, 59, tzinfo=timezone.utc)
    assert domain.parse_message("sensors.mh-0001.heartbeat", b"anything", NOW) == ("mh-0001", None)
    assert domain.parse_message("sensors.mh-0001.alarm", b'{"code": "OPEN"}', NOW)[1].at == NOW


@pytest.mark.parametrize("key, body, reason", [
    ("sensors.mh-0001.status", b"{}", "topic"), ("other.mh-0001.alarm", b"{}", "topic"),
    ("sensors.mh-0001.alarm", b"not json", "not JSON"), ("sensors.mh-0001.alarm", b"[1]", "JSON object"),
    ("sensors.mh-0001.alarm", b'{"code": "open"}', "code"), ("sensors.mh-0001.alarm", b'{}', "code"),
    ("sensors.mh-0001.alarm", b'{"code": "OPEN", "at": "yesterday"}', "ISO 8601"),
    ("sensors.mh-0001.alarm", b'{"code": "OPEN", "at": "2026-11-25T08:00:00"}', "time zone"),
    ("sensors.mh-0001.alarm", b'{"code": "OPEN", "at": "2026-11-26T08:00:00+00:00"}', "future"),
    ("sensors.mh-0001.alarm", b'{"code": "OPEN", "value": true}', "number"),
    ("sensors.mh-0001.alarm", b'{"code": "OPEN", "value": "3"}', "number"),
    ("sensors.mh-0001.alarm", b'{"code": "OPEN", "pad": "' + b"x" * 5000 + b'"}', "bytes"),
])
def test_a_malformed_message_is_refused_with_the_reason(key, body, reason):
    with pytest.raises(domain.Malformed, match=reason):
        domain.parse_message(key, body, NOW)


def test_an_alarm_code_the_device_does_not_map_is_malformed():
    with pytest.raises(domain.Malformed, match="BURN"):
        domain.category_of({"OPEN": "0601"}, "BURN")


def test_a_device_is_silent_only_past_its_heartbeat():
    registered = NOW - timedelta(hours=1)
    assert not domain.is_silent(NOW - timedelta(seconds=299), registered, 300, NOW)
    assert domain.is_silent(NOW - timedelta(seconds=301), registered, 300, NOW)
    assert domain.is_silent(None, registered, 300, NOW)          # never heard from since registration
    assert not domain.is_silent(None, registered, 0, NOW)        # no heartbeat: never silent


def test_decisions_need_the_role_the_scope_the_pending_state_and_a_reason_to_dismiss():
    officer = Principal("o-1", "officer", ("330102",))
    lineage = ["330100", "330102", "330102001"]
    assert domain.plan_decision(officer, "confirm", domain.PENDING, lineage, "") == domain.CONFIRMED
    assert domain.plan_decision(officer, "dismiss", domain.PENDING, lineage, "test alarm") == domain.DISMISSED
    with pytest.raises(InvalidArgument, match="why"):
        domain.plan_decision(officer, "dismiss", domain.PENDING, lineage, " ")
    with pytest.raises(PermissionDenied):
        domain.plan_decision(Principal("o-2", "officer", ("330103",)), "confirm", domain.PENDING, lineage, "")
    with pytest.raises(PermissionDenied):
        domain.plan_decision(Principal("d-1", "department", ("municipal",)), "confirm", domain.PENDING, lineage, "")
    with pytest.raises(FailedPrecondition, match="confirmed already"):
        domain.plan_decision(officer, "dismiss", domain.CONFIRMED, lineage, "x")
