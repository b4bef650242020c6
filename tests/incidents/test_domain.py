"""The incidents domain alone: no database, no broker."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from services.incidents import domain, report_rules
from shared import datum
from shared.auth import Principal
from shared.datum import Datum
from shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied

LINEAGE = ("330100", "330102", "330102001", "330102001001", "330102001001001")
NOW = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
DISPATCHER = Principal("d1", "dispatcher", ("330102",))
OFFICER = Principal("o1", "officer", ("330102001001001",))
DEPT = Principal("CG-01", "department", ("330102",))
SERVICE = Principal("dispatch", "service", ())


def facts(status, department=None, reporter="o1"):
    return domain.Facts(status, LINEAGE, reporter, department)


def draft(**kw):
    args = dict(report_id="5f0c6b7e-8a7d-4b3f-9c1a-1f2e3d4c5b6a", category_code="0102", title="t", description="",
                lon=120.05, lat=30.05, accuracy_m=5, occurred_at=NOW, now=NOW)
    args.update(kw)
    return report_rules.make_draft(**args)


def test_the_content_hash_ignores_nothing_that_matters():
    assert draft().content_hash() == draft().content_hash()
    assert draft().content_hash() != draft(title="other").content_hash()
    assert draft().content_hash() != draft(lon=120.0501).content_hash()


@pytest.mark.parametrize("kw,message", [
    (dict(occurred_at=NOW + timedelta(minutes=6)), "in the future"),
    (dict(occurred_at=NOW + timedelta(minutes=4)), None),  # within the clock skew
    (dict(occurred_at=datetime(2026, 11, 24, 8, 0)), "time zone"),
    (dict(occurred_at=None), "required"),
    (dict(lon=181.0), "outside -180..180"),
    (dict(accuracy_m=float("nan")), "finite"),
    (dict(title="a\x00b"), "control characters"),
])
def test_draft_checks(kw, message):
    if message is None:
        draft(**kw)
        return
    with pytest.raises(InvalidArgument, match=message):
        draft(**kw)


@pytest.mark.parametrize("d", [Datum.GCJ02, Datum.BD09, Datum.CGCS2000, Datum.WGS84])
def test_a_draft_holds_the_point_in_wgs84_and_as_sent(d):
    sent_lon, sent_lat = datum.from_wgs84(d, 120.05, 30.05)
    got = draft(lon=sent_lon, lat=sent_lat, in_datum=d)
    assert got.lon == pytest.approx(120.05, abs=1e-8) and got.lat == pytest.approx(30.05, abs=1e-8)
    assert (got.sent_lon, got.sent_lat, got.datum) == (sent_lon, sent_lat, d)
    assert got.content_hash() == draft().content_hash()  # the same place, whichever datum it came in


@pytest.mark.parametrize("kw,message", [
    (dict(lon=-180.0, lat=10.0, in_datum=Datum.BD09), "outside -180..180"),  # the shift carries it out
    (dict(in_datum="gcj02"), "not one of"),
    (dict(lat=float("inf"), in_datum=Datum.GCJ02), "finite"),
])
def test_a_point_out_of_range_for_its_datum_is_refused(kw, message):
    with pytest.raises(InvalidArgument, match=message):
        draft(**kw)


def test_attachments_are_references_with_limits():
    ok = SimpleNamespace(sha256="a" * 64, size_bytes=10, media_type="image/jpeg", uri="https://x/1")
    assert draft(attachments=[ok]).attachments[0].uri == "https://x/1"
    big = SimpleNamespace(**{**ok.__dict__, "size_bytes": report_rules.MAX_ATTACHMENT_BYTES + 1})
    with pytest.raises(InvalidArgument, match="size_bytes"):
        draft(attachments=[big])


LEGAL = [
    (DISPATCHER, domain.REPORTED, "dispatch", dict(department_code="CG-01"), domain.DISPATCHED),
    (DEPT, domain.DISPATCHED, "accept", {}, domain.IN_PROGRESS),
    (DEPT, domain.IN_PROGRESS, "resolve", {}, domain.RESOLVED),
    (OFFICER, domain.RESOLVED, "verify", {}, domain.VERIFIED),
    (OFFICER, domain.RESOLVED, "reopen", dict(note="still there"), domain.REOPENED),
    (DISPATCHER, domain.VERIFIED, "close", dict(violation_confirmed=True), domain.CLOSED),
    (DISPATCHER, domain.REPORTED, "reject", dict(note="private land"), domain.REJECTED),
    (OFFICER, domain.REJECTED, "resubmit", {}, domain.REPORTED),
    (DISPATCHER, domain.DISPATCHED, "reroute", dict(department_code="SW-02", note="wrong dept"), domain.DISPATCHED),
    (SERVICE, domain.REOPENED, "dispatch", dict(department_code="CG-01"), domain.DISPATCHED),
    (DISPATCHER, domain.IN_PROGRESS, "merge", dict(duplicate_of="x"), domain.CLOSED),
]


@pytest.mark.parametrize("who,status,action,kw,target", LEGAL)
def test_legal_moves(who, status, action, kw, target):
    out = domain.plan_transition(who, facts(status, department="CG-01"), domain.Request(action=action, **kw))
    assert out.status == target


def test_every_state_refuses_what_it_does_not_allow():
    for status in domain.STATUSES:
        for name, action in domain.ACTIONS.items():
            if status in action.sources:
                continue
            takes_department = action.department in (domain.SETS, domain.CHANGES)
            kw = dict(department_code="SW-09", note="n") if takes_department else dict(note="n")
            if action.takes == "duplicate_of":
                kw["duplicate_of"] = "x"
            who = OFFICER if action.reporter_only else SERVICE
            with pytest.raises(FailedPrecondition, match=f"that is {status}"):
                domain.plan_transition(who, facts(status, "CG-01"), domain.Request(action=name, **kw))


def test_who_may_act():
    with pytest.raises(PermissionDenied):
        domain.plan_transition(OFFICER, facts(domain.REPORTED), domain.Request("dispatch", department_code="X"))
    with pytest.raises(PermissionDenied, match="outside your grids"):
        domain.plan_transition(Principal("d2", "dispatcher", ("330103",)), facts(domain.REPORTED),
                               domain.Request("dispatch", department_code="X"))
    with pytest.raises(PermissionDenied, match="SW-02"):
        domain.plan_transition(Principal("SW-02", "department", ("330102",)), facts(domain.DISPATCHED, "CG-01"),
                               domain.Request("accept"))
    with pytest.raises(PermissionDenied, match="who reported"):
        domain.plan_transition(Principal("o2", "officer", LINEAGE[-1:]), facts(domain.REJECTED),
                               domain.Request("resubmit"))
    with pytest.raises(InvalidArgument, match="unknown action"):
        domain.plan_transition(DISPATCHER, facts(domain.REPORTED), domain.Request("teleport"))


def test_catalogue_checks():
    good = {"categories": [{"code": "01", "name": "A", "priority": 3, "deadline_hours": 4},
                           {"code": "0101", "name": "B", "priority": 1, "deadline_hours": 2}]}
    assert [c.parent_code for c in domain.parse_catalogue(good)] == [None, "01"]
    orphan = {"categories": [{"code": "0101", "name": "B", "priority": 1, "deadline_hours": 2}]}
    with pytest.raises(InvalidArgument, match="parent 01"):
        domain.parse_catalogue(orphan)
    with pytest.raises(InvalidArgument, match="priority"):
        domain.parse_catalogue({"categories": [{"code": "01", "name": "A", "priority": 9, "deadline_hours": 4}]})


def test_cursors_round_trip_and_refuse_forgeries():
    assert domain.decode_cursor(domain.encode_cursor(12345)) == 12345
    assert domain.decode_cursor("") is None
    with pytest.raises(InvalidArgument):
        domain.decode_cursor("s'; DROP TABLE")


def test_a_decision_that_overtook_an_earlier_one_is_told_from_a_late_one():
    early = [("resolve", "dispatched"), ("resolve", "reported"), ("accept", "reported"),
             ("reroute", "reported"), ("resolve", "reopened")]
    late = [("accept", "in_progress"), ("accept", "resolved"), ("resolve", "closed"), ("dispatch", "dispatched"),
            ("reject", "closed"), ("resolve", "rejected"), ("merge", "closed")]
    assert all(domain.arrived_early(a, s) for a, s in early)
    assert not any(domain.arrived_early(a, s) for a, s in late)
    assert not domain.arrived_early("resolve", "in_progress")  # it applies: not early, not late
