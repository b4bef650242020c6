"""The credit registry on the real servers: codes, the incident-to-record path, duplicates,
expiry, supersession, lists as of a past time, a tampered row caught, authorization."""
from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import psycopg
import pytest
import sqlalchemy.exc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import text

from gridbus.credit.v1 import credit_pb2 as pb
from gridbus.incidents.v1 import incidents_pb2 as ipb
from services.credit.domain import USCC_CHARS, uscc_check_char
from shared.config import settings
from shared.db import engine, session_scope
from tests.credit.test_domain import ID_EXAMPLE, REAL_USCC
from tests.event_contract import assert_payloads_match_protos
from tests.incidents.conftest import GRIDS, report_request
from tests.incidents.test_report import call_error
from tests.support import EventTap, metadata, publish_event, token

ADMIN = metadata(token("admin", "330100", member_id="registry-admin"))
DEPT = metadata(token("department", "330100", member_id="SCJG-MARKET"))
GRID = GRIDS[12]


def ts(when: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(when)
    return t


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def enterprise(credit, code, name="Test Co."):
    try:
        return credit.RegisterSubject(pb.RegisterSubjectRequest(type="enterprise", code=code, name=name,
                                                                registered_grid=GRID), metadata=ADMIN)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.ALREADY_EXISTS
        return credit.GetSubject(pb.GetSubjectRequest(uscc=code), metadata=ADMIN)


def test_codes_are_checked_with_reasons(credit):
    s = enterprise(credit, REAL_USCC[1], "China example Co.")
    assert (s.type, s.code) == ("enterprise", REAL_USCC[1])
    err = call_error(credit.RegisterSubject, pb.RegisterSubjectRequest(type="enterprise", code="91350100M000100Y44",
                                                                      name="Forged"), metadata=ADMIN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "check character" in err.details()
    err = call_error(credit.RegisterSubject, pb.RegisterSubjectRequest(type="enterprise", code=REAL_USCC[1],
                                                                      name="Again"), metadata=ADMIN)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    err = call_error(credit.RegisterSubject, pb.RegisterSubjectRequest(type="person", code="110105194912310021",
                                                                      name="Typo"), metadata=ADMIN)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "check digit" in err.details()


def test_a_person_is_found_by_number_but_the_number_is_never_kept_or_shown(environment, credit, credit_server):
    person = credit.RegisterSubject(pb.RegisterSubjectRequest(type="person", code=ID_EXAMPLE, name="Zhang San",
                                                              registered_grid=GRID), metadata=ADMIN)
    assert person.code == "110105********002X"
    found = credit.GetSubject(pb.GetSubjectRequest(id_number=ID_EXAMPLE.lower(), purpose="case 17 check"),
                              metadata=DEPT)
    assert found.id == person.id
    with psycopg.connect(environment["GRIDBUS_DATABASE_URL"].replace("+psycopg", "")) as conn:
        dump = str(conn.execute("SELECT s.*, (SELECT array_agg(a.*) FROM credit.access_log a) FROM credit.subjects s")
                   .fetchall())
    assert ID_EXAMPLE not in dump and "1949123100" not in dump
    assert ID_EXAMPLE not in credit_server[0].log()
    err = call_error(credit.GetSubject, pb.GetSubjectRequest(subject_id=person.id), metadata=DEPT)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "purpose" in err.details()
    officer = metadata(token("officer", GRID))
    err = call_error(credit.GetSubject, pb.GetSubjectRequest(subject_id=person.id, purpose="curious"), metadata=officer)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    credit.ListRecords(pb.ListRecordsRequest(subject_id=person.id, purpose="permit review"), metadata=DEPT)
    with session_scope() as s:
        reads = s.execute(text("SELECT reader_id, what, purpose FROM credit.access_log WHERE subject_id = :s ORDER BY id"),
                          {"s": person.id}).all()
    assert [(r.reader_id, r.what, r.purpose) for r in reads] == [
        ("SCJG-MARKET", "subject", "case 17 check"), ("SCJG-MARKET", "records", "permit review")]


def close_with_violation(stub, subject_ref: str) -> ipb.Incident:
    officer = metadata(token("officer", GRID, member_id="officer-credit"))
    dispatcher = metadata(token("dispatcher", GRID[:6], member_id="dispatcher-credit"))
    dept = metadata(token("department", GRID[:6], member_id="HB-ENV"))
    i = stub.Report(report_request(GRID, category="0107", subject=ipb.Subject(type="enterprise", ref=subject_ref)),
                    metadata=officer).incident

    def act(who, action, inc, **kw):
        return stub.Transition(ipb.TransitionRequest(incident_id=inc.id, action=action, expected_version=inc.version,
                                                     **kw), metadata=who)
    i = act(dispatcher, ipb.ACTION_DISPATCH, i, department_code="HB-ENV")
    i = act(dept, ipb.ACTION_ACCEPT, i)
    i = act(dept, ipb.ACTION_RESOLVE, i, note="fined and fixed")
    i = act(officer, ipb.ACTION_VERIFY, i)
    return act(dispatcher, ipb.ACTION_CLOSE, i, violation_confirmed=True)


def test_a_closed_incident_with_a_confirmed_violation_becomes_one_record(environment, stub, incidents_nameko,
                                                                         credit, credit_nameko):
    subject = enterprise(credit, REAL_USCC[2], "Fume Kitchen Ltd.")
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "credit.#")
    try:
        incident = close_with_violation(stub, REAL_USCC[2])
        records = wait_for(lambda: [r for r in credit.ListRecords(pb.ListRecordsRequest(subject_id=subject.id),
                                                                  metadata=DEPT).records
                                    if r.incident_id == incident.id])
        events = tap.drain(lambda ev: any(e["type"] == "credit.record.added" and e["data"]["incident_id"] == incident.id
                                          for e in ev))
    finally:
        tap.close()
    assert len(records) == 1
    r = records[0]
    assert (r.kind, r.category, r.severity, r.confirmed_by) == ("violation", "0107", 3, "dispatcher-credit")
    assert r.source.startswith("event:")
    added = [e for e in events if e["type"] == "credit.record.added" and e["data"]["incident_id"] == incident.id]
    assert added[0]["data"]["hash"] == r.hash
    assert_payloads_match_protos(events)


def test_a_duplicated_event_never_makes_two_records(environment, credit, credit_nameko):
    subject = enterprise(credit, REAL_USCC[0], "Example Co.")
    data = {"incident_id": str(uuid.uuid4()), "category": "0503", "priority": 2, "grid_code": GRID,
            "subject": {"type": "enterprise", "ref": REAL_USCC[0]}, "violation_confirmed": True,
            "actor": {"id": "dispatcher-x", "role": "dispatcher"}}
    event_id = publish_event(environment["GRIDBUS_AMQP_URI"], "incidents.incident.closed", data)
    publish_event(environment["GRIDBUS_AMQP_URI"], "incidents.incident.closed", data, event_id=event_id)

    def mine():
        return [r for r in credit.ListRecords(pb.ListRecordsRequest(subject_id=subject.id), metadata=DEPT).records
                if r.incident_id == data["incident_id"]]
    assert wait_for(mine)
    time.sleep(1.0)
    assert len(mine()) == 1 and mine()[0].severity == 2


def test_an_unknown_subject_is_kept_for_an_operator(environment, credit, credit_nameko):
    data = {"incident_id": str(uuid.uuid4()), "category": "0503", "priority": 3, "grid_code": GRID,
            "subject": {"type": "person", "ref": str(uuid.uuid4())}, "violation_confirmed": True}
    event_id = publish_event(environment["GRIDBUS_AMQP_URI"], "incidents.incident.closed", data)
    items = wait_for(lambda: [u for u in credit.ListUnmatched(pb.ListUnmatchedRequest(), metadata=ADMIN).items
                              if u.event_id == event_id])
    assert items and "no person" in items[0].reason


def test_supersession_expiry_and_lists_as_of_a_time(environment, credit, credit_nameko):
    subject = credit.RegisterSubject(pb.RegisterSubjectRequest(type="enterprise", code=_fresh_uscc(),
                                                               name="Road Works Co.", registered_grid=GRID),
                                     metadata=ADMIN)
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "credit.list.changed")
    try:
        before = datetime.now(timezone.utc)
        serious = credit.AddRecord(pb.AddRecordRequest(subject_id=subject.id, kind="violation", category="0302",
                                                       severity=1), metadata=ADMIN)
        during = datetime.now(timezone.utc)
        time.sleep(0.05)
        appeal = credit.AddRecord(pb.AddRecordRequest(subject_id=subject.id, kind="annulment", category="0302",
                                                      severity=1, supersedes=serious.id,
                                                      reason="appeal upheld: permit was valid"), metadata=ADMIN)
        changes = tap.drain(lambda ev: len([e for e in ev if e["subject"] == f"subjects/{subject.id}"]) >= 2)
    finally:
        tap.close()

    def standing(at):
        return credit.GetStanding(pb.GetStandingRequest(subject_id=subject.id, as_of=ts(at)), metadata=DEPT)
    assert (standing(before).score, list(standing(before).lists)) == (100, [])
    assert (standing(during).score, list(standing(during).lists)) == (70, ["black"])
    now = standing(datetime.now(timezone.utc))
    assert (now.score, list(now.lists)) == (100, [])
    mine = [e["data"] for e in changes if e["subject"] == f"subjects/{subject.id}"]
    assert [(c["previous_lists"], c["lists"]) for c in mine] == [([], ["black"]), (["black"], [])]
    assert_payloads_match_protos(changes)
    # The old record is still there, unchanged: a correction appends.
    records = credit.ListRecords(pb.ListRecordsRequest(subject_id=subject.id), metadata=DEPT).records
    assert [r.id for r in records] == [serious.id, appeal.id] and records[0].hash == serious.hash
    err = call_error(credit.AddRecord, pb.AddRecordRequest(subject_id=subject.id, kind="annulment", category="0302",
                                                           severity=1, supersedes=serious.id, reason="again"),
                     metadata=ADMIN)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    # A minor violation expires after its validity (3 years in rules.yaml).
    credit.AddRecord(pb.AddRecordRequest(subject_id=subject.id, kind="violation", category="0302", severity=4),
                     metadata=ADMIN)
    assert standing(datetime.now(timezone.utc) + timedelta(days=30)).score == 97
    assert standing(datetime.now(timezone.utc) + timedelta(days=1096)).score == 100
    black = credit.ListMembers(pb.ListMembersRequest(list="black", as_of=ts(during)), metadata=DEPT).members
    assert subject.id in [m.subject.id for m in black]
    black_now = credit.ListMembers(pb.ListMembersRequest(list="black"), metadata=DEPT).members
    assert subject.id not in [m.subject.id for m in black_now]


def _fresh_uscc() -> str:
    """A valid code no test has used (a random body and its check character)."""
    body = "91330100" + "".join(random.choice(USCC_CHARS) for _ in range(9))
    return body + uscc_check_char(body)


def test_list_changes_that_time_alone_makes_are_announced_once(environment, credit, credit_nameko):
    """A black-listing violation expires; a violation stops being recent and the red list comes
    back. The sweep (the credit service's timer) announces each, once, on a simulated clock."""
    from services.credit import operations as ops
    black = enterprise(credit, _fresh_uscc(), "Expiring Violation Co.")
    good = enterprise(credit, _fresh_uscc(), "Good Neighbour Co.")
    mine = {f"subjects/{black.id}", f"subjects/{good.id}"}
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "credit.list.changed")
    try:
        serious = credit.AddRecord(pb.AddRecordRequest(subject_id=black.id, kind="violation", category="0302",
                                                       severity=1), metadata=ADMIN)
        credit.AddRecord(pb.AddRecordRequest(subject_id=good.id, kind="commendation", category="0102", severity=1),
                         metadata=ADMIN)
        minor = credit.AddRecord(pb.AddRecordRequest(subject_id=good.id, kind="violation", category="0302",
                                                     severity=4), metadata=ADMIN)
        ids = [black.id, good.id]
        assert ops.sweep_standings(datetime.now(timezone.utc), subject_ids=ids) == 0  # nothing due yet
        clean_year = minor.valid_from.ToDatetime(timezone.utc) + timedelta(days=ops.rules().red_clean_days, hours=1)
        assert ops.sweep_standings(clean_year, subject_ids=ids) == 1       # good: red again
        expired = serious.valid_until.ToDatetime(timezone.utc) + timedelta(hours=1)
        assert ops.sweep_standings(expired, subject_ids=ids) == 2          # good: off (commendation gone); black: off
        assert ops.sweep_standings(expired, subject_ids=ids) == 0          # each change once
        events = tap.drain(lambda ev: len([e for e in ev if e["subject"] in mine]) >= 6)
        time.sleep(0.5)
        events = [e for e in tap.drain(timeout=0.5) if e["subject"] in mine]
    finally:
        tap.close()
    seen = [(e["subject"].split("/")[1], e["data"]["previous_lists"], e["data"]["lists"], e["data"]["cause"])
            for e in events]
    assert seen == [(black.id, [], ["black"], "record"), (good.id, [], ["red"], "record"),
                    (good.id, ["red"], [], "record"), (good.id, [], ["red"], "time"),
                    (good.id, ["red"], [], "time"), (black.id, ["black"], [], "time")]
    assert all(e["data"]["record_id"] is None for e in events if e["data"]["cause"] == "time")
    assert_payloads_match_protos(events)


def test_the_sweep_learns_the_standing_of_subjects_from_before_announcements_quietly(environment, credit,
                                                                                     credit_nameko):
    """Subjects with records from before credit.standings existed are backfilled as unknown by the
    migration; the service's timer fills them in without announcing a change nobody missed."""
    subject = enterprise(credit, _fresh_uscc(), "Old Records Co.")
    mine = f"subjects/{subject.id}"
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "credit.list.changed")
    try:
        credit.AddRecord(pb.AddRecordRequest(subject_id=subject.id, kind="violation", category="0302", severity=1),
                         metadata=ADMIN)
        # The record's own announcement first, however late the relay is, so it is not taken for the sweep's.
        assert [e["data"]["cause"] for e in tap.drain(lambda ev: any(e["subject"] == mine for e in ev))
                if e["subject"] == mine] == ["record"]
        tap.received.clear()
        with session_scope() as s:  # what migration 0002 leaves for such a subject
            s.execute(text("UPDATE credit.standings SET lists = NULL, score = NULL, next_change_at = now() "
                           "WHERE subject_id = :s"), {"s": subject.id})

        def learned():
            with session_scope() as s:
                return s.execute(text("SELECT lists FROM credit.standings WHERE subject_id = :s"),
                                 {"s": subject.id}).scalar()
        assert wait_for(learned) == ["black"], "the sweep timer did not run"
        assert [e for e in tap.drain(timeout=1.0) if e["subject"] == mine] == []
    finally:
        tap.close()


def test_the_database_refuses_edits_and_the_chain_catches_a_row_altered_behind_its_back(environment, credit):
    subject = enterprise(credit, _fresh_uscc(), "Chain Test Co.")
    r = credit.AddRecord(pb.AddRecordRequest(subject_id=subject.id, kind="commendation", category="0102", severity=3),
                         metadata=ADMIN)
    assert credit.VerifyChain(pb.VerifyChainRequest(), metadata=ADMIN).intact
    owner = engine(settings().owner_database_url)
    for sql in ("UPDATE credit.records SET severity = 1 WHERE id = :i", "DELETE FROM credit.records WHERE id = :i"):
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="permission denied for table records"):
            with session_scope() as s:  # the services' role
                s.execute(text(sql), {"i": r.id})
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="credit.records is append-only"):
            with session_scope(owner) as s:  # the owner meets the trigger
                s.execute(text(sql), {"i": r.id})

    def as_owner_around_the_trigger(severity: int) -> None:
        with session_scope(owner) as s:  # the trigger is off only inside this transaction
            s.execute(text("ALTER TABLE credit.records DISABLE TRIGGER records_append_only"))
            s.execute(text("UPDATE credit.records SET severity = :v WHERE id = :i"), {"v": severity, "i": r.id})
            s.execute(text("ALTER TABLE credit.records ENABLE TRIGGER records_append_only"))
    as_owner_around_the_trigger(4)
    try:
        result = credit.VerifyChain(pb.VerifyChainRequest(), metadata=ADMIN)
        assert not result.intact and result.first_bad_record_id == r.id and result.first_bad_seq == r.seq
        assert "content" in result.reason
    finally:
        as_owner_around_the_trigger(3)
    assert credit.VerifyChain(pb.VerifyChainRequest(), metadata=ADMIN).intact


def test_only_authorized_roles_write(credit):
    subject = enterprise(credit, _fresh_uscc(), "Auth Co.")
    add = pb.AddRecordRequest(subject_id=subject.id, kind="commendation", category="0102", severity=2)
    for who in (DEPT, metadata(token("officer", GRID))):
        assert call_error(credit.AddRecord, add, metadata=who).code() == grpc.StatusCode.PERMISSION_DENIED
    far = metadata(token("dispatcher", "330102" if not GRID.startswith("330102") else "330103"))
    assert call_error(credit.AddRecord, add, metadata=far).code() == grpc.StatusCode.PERMISSION_DENIED
    near = metadata(token("dispatcher", GRID[:6]))
    assert credit.AddRecord(add, metadata=near).kind == "commendation"
    assert call_error(credit.RegisterSubject, pb.RegisterSubjectRequest(type="enterprise", code=_fresh_uscc(),
                                                                       name="n"), metadata=near).code() == \
        grpc.StatusCode.PERMISSION_DENIED
    assert call_error(credit.VerifyChain, pb.VerifyChainRequest(), metadata=near).code() == \
        grpc.StatusCode.PERMISSION_DENIED


def test_a_closure_that_black_lists_announces_it_from_the_nameko_worker(environment, credit, credit_nameko):
    """The nameko worker writes the list change too (its events go out in bulk, under eventlet)."""
    code = _fresh_uscc()
    subject = enterprise(credit, code, "Serious Case Co.")
    data = {"incident_id": str(uuid.uuid4()), "category": "0302", "priority": 1, "grid_code": GRID,
            "subject": {"type": "enterprise", "ref": code}, "violation_confirmed": True}
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "credit.list.changed")
    try:
        publish_event(environment["GRIDBUS_AMQP_URI"], "incidents.incident.closed", data)
        events = tap.drain(lambda ev: any(e["subject"] == f"subjects/{subject.id}" for e in ev), timeout=20)
    finally:
        tap.close()
    (changed,) = [e["data"] for e in events if e["subject"] == f"subjects/{subject.id}"]
    assert (changed["lists"], changed["subject_code"], changed["registered_grid"], changed["division"]) == \
        (["black"], code, GRID, GRID[:6])
