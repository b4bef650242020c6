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
ADMIN = Principal("lead", "admin", ("330100",))


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
            who = OFFICER if action.reporter_only else SERVICE if "service" in action.roles else (
                {"dispatcher": DISPATCHER, "officer": OFFICER, "department": DEPT, "admin": ADMIN}[min(action.roles)])
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


# --- side procedures -------------------------------------------------------------------------

def waiting(status, pending=None, pending_by=None, supervised=False, department="CG-01"):
    return domain.Facts(status, LINEAGE, "o1", department, pending, pending_by, supervised)


def test_each_procedure_is_a_request_an_approval_and_a_refusal_by_other_roles():
    for p in domain.PROCEDURES.values():
        ask, yes, no = (domain.ACTIONS[f"{verb}_{p.name}"] for verb in ("request", "approve", "refuse"))
        assert (ask.opens, yes.decides, no.decides) == (p.name, p.name, p.name)
        assert ask.roles.isdisjoint(yes.roles) and yes.roles == no.roles
        assert ask.note and yes.note and no.note  # every request and decision says why
        assert (ask.target, no.target, yes.target) == (None, None, p.approved)


def test_a_request_waits_for_its_decision_and_blocks_another():
    out = domain.plan_transition(DISPATCHER, waiting(domain.IN_PROGRESS), domain.Request("request_void", note="dup"))
    assert (out.status, out.pending, out.pending_by) == (domain.IN_PROGRESS, "void", "d1")
    with pytest.raises(FailedPrecondition, match="void request is waiting"):
        domain.plan_transition(DISPATCHER, waiting(domain.IN_PROGRESS, "void", "d1"),
                               domain.Request("request_supervise", note="x"))
    with pytest.raises(FailedPrecondition, match="no park request"):
        domain.plan_transition(ADMIN, waiting(domain.IN_PROGRESS, "void", "d1"), domain.Request("approve_park", note="x"))
    out = domain.plan_transition(ADMIN, waiting(domain.IN_PROGRESS, "void", "d1"), domain.Request("approve_void", note="y"))
    assert (out.status, out.pending) == (domain.VOIDED, None)
    out = domain.plan_transition(ADMIN, waiting(domain.IN_PROGRESS, "void", "d1"), domain.Request("refuse_void", note="n"))
    assert (out.status, out.pending) == (domain.IN_PROGRESS, None)
    with pytest.raises(PermissionDenied, match="asked"):
        domain.plan_transition(Principal("d1", "admin", ("330100",)), waiting(domain.IN_PROGRESS, "void", "d1"),
                               domain.Request("approve_void", note="self"))
    with pytest.raises(PermissionDenied):
        domain.plan_transition(DISPATCHER, waiting(domain.IN_PROGRESS, "void", "o1"),
                               domain.Request("approve_void", note="mine"))
    with pytest.raises(InvalidArgument, match="note"):
        domain.plan_transition(ADMIN, waiting(domain.IN_PROGRESS, "void", "d1"), domain.Request("refuse_void"))


def test_a_request_lapses_when_the_case_moves_out_of_its_states():
    out = domain.plan_transition(SERVICE, waiting(domain.IN_PROGRESS, "park", "CG-01"), domain.Request("resolve"))
    assert (out.status, out.pending) == (domain.RESOLVED, None)
    out = domain.plan_transition(SERVICE, waiting(domain.DISPATCHED, "void", "d1"), domain.Request("accept"))
    assert (out.status, out.pending) == (domain.IN_PROGRESS, "void")


def test_a_park_needs_a_review_date_in_the_future_within_a_year():
    ask = dict(action="request_park", note="no budget")
    out = domain.plan_transition(DEPT, waiting(domain.IN_PROGRESS), domain.Request(**ask, review_at=NOW + timedelta(days=90)),
                                 NOW)
    assert out.pending == "park"
    for review_at, message in ((None, "review_at"), (NOW - timedelta(minutes=1), "future"),
                               (NOW + timedelta(days=400), "366 days"), (datetime(2027, 1, 1), "time zone")):
        with pytest.raises(InvalidArgument, match=message):
            domain.plan_transition(DEPT, waiting(domain.IN_PROGRESS), domain.Request(**ask, review_at=review_at), NOW)
    with pytest.raises(InvalidArgument, match="review_at only goes with request_park"):
        domain.plan_transition(DISPATCHER, waiting(domain.IN_PROGRESS),
                               domain.Request("request_void", note="x", review_at=NOW + timedelta(days=1)), NOW)
    with pytest.raises(PermissionDenied, match="SW-02"):
        domain.plan_transition(Principal("SW-02", "department", ("330102",)), waiting(domain.IN_PROGRESS),
                               domain.Request(**ask, review_at=NOW + timedelta(days=1)), NOW)


def test_the_clock_stands_still_while_parked_or_a_pausing_request_waits():
    assert domain.clock_paused(domain.PARKED, None)
    assert domain.clock_paused(domain.IN_PROGRESS, "void") and domain.clock_paused(domain.IN_PROGRESS, "park")
    assert not domain.clock_paused(domain.IN_PROGRESS, "supervise")  # supervision urges, it does not excuse
    assert not domain.clock_paused(domain.IN_PROGRESS, None)


def test_supervision_once_and_voided_cases_are_not_filed():
    with pytest.raises(FailedPrecondition, match="supervised already"):
        domain.plan_transition(DISPATCHER, waiting(domain.IN_PROGRESS, supervised=True),
                               domain.Request("request_supervise", note="again"))
    assert domain.ACTIONS["approve_supervise"].supervises
    assert domain.funnel_stages(domain.VOIDED, {domain.DISPATCHED}) == ("reported",)
    assert domain.PARKED in domain.OPEN_STATUSES and domain.PARKED not in domain.ACTIVE_STATUSES
