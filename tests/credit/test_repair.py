"""Credit repair and joint punishment on the real servers: a repair approved (the record stops
being published and counting, as a new record; the history shows it) and one refused, the
minimum period, the CLI; a procurement system's restriction check refused for a black-listed
enterprise, and every check logged with the asking system and its purpose."""
from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import grpc
from sqlalchemy import text

from gridbus.credit.v1 import credit_pb2 as pb
from services.credit import intake
from shared.db import session_scope
from tests.conftest import SYSTEM
from tests.event_contract import assert_payloads_match_protos
from tests.credit.test_credit import ADMIN, DEPT, _fresh_uscc
from tests.incidents.test_report import call_error
from tests.support import EventTap, http_get, metadata, token

GRIDBUS = str(Path(sys.executable).parent / "gridbus")
PROCUREMENT = metadata(token("department", "330100", member_id="GOV-PROCUREMENT"))


def day(offset: int) -> str:
    return (intake.today() + timedelta(days=offset)).isoformat()


def penalty(code: str, number: str, decided_days_ago: int, severity: int, name="Repair Co.") -> dict:
    return {"authority": "HB-ENV", "decision_number": number, "decision_date": day(-decided_days_ago),
            "kind": "penalty", "subject_code": code, "subject_name": name, "legal_basis": "大气污染防治法 第一百一十八条",
            "severity": severity}


def send(*rows) -> list[str]:
    report = intake.import_records(SYSTEM, list(enumerate(rows, start=1)))
    assert report.count(intake.INSERTED) == len(rows), report.outcomes
    return [o.record_id for o in report.outcomes]


def test_an_approved_repair_ends_publication_and_counting_as_a_new_record(environment, authorities, credit,
                                                                          credit_public, credit_nameko):
    code = _fresh_uscc()
    ordinary, serious = send(penalty(code, f"RP-{code}-1", 100, 3), penalty(code, f"RP-{code}-2", 100, 2))
    subject = credit.GetSubject(pb.GetSubjectRequest(uscc=code), metadata=ADMIN)
    before = credit.GetStanding(pb.GetStandingRequest(subject_id=subject.id), metadata=DEPT)
    assert before.score == 100 - 8 - 15
    url = f"{credit_public}/credit/v1/enterprises/{code}"
    assert len(http_get(url, client="192.0.2.10")[2]["records"]) == 2

    err = call_error(credit.ApplyRepair, pb.ApplyRepairRequest(record_id=serious, applicant="Legal rep. Wang",
                                                               evidence="filters fitted", corrected_on=day(-50)),
                     metadata=ADMIN)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and f"from {day(-100 + 365)}" in err.details()
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "credit.repair.*")
    try:
        applied = credit.ApplyRepair(pb.ApplyRepairRequest(record_id=ordinary, applicant="Legal rep. Wang",
                                                           evidence="filters fitted, inspected on site",
                                                           corrected_on=day(-50)), metadata=ADMIN)
        assert (applied.status, applied.applied_on, applied.received_by) == ("pending", day(0), "registry-admin")
        again = call_error(credit.ApplyRepair, pb.ApplyRepairRequest(record_id=ordinary, applicant="x", evidence="y",
                                                                     corrected_on=day(-1)), metadata=ADMIN)
        assert again.code() == grpc.StatusCode.FAILED_PRECONDITION and applied.id in again.details()
        refused = call_error(credit.DecideRepair, pb.DecideRepairRequest(application_id=applied.id, approve=True,
                                                                         reason="ok"), metadata=DEPT)
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        decided = credit.DecideRepair(pb.DecideRepairRequest(application_id=applied.id, approve=True,
                                                             reason="corrected and inspected; fine paid"),
                                      metadata=ADMIN)
        events = tap.drain(lambda ev: len([e for e in ev if e["data"]["application_id"] == applied.id]) >= 2)
    finally:
        tap.close()
    assert decided.status == "approved" and decided.decided_by == "registry-admin" and decided.repair_record_id
    assert [e["type"] for e in events if e["data"]["application_id"] == applied.id] == \
        ["credit.repair.applied", "credit.repair.decided"]

    body = http_get(url, client="192.0.2.10")[2]
    assert [r["decision_number"] for r in body["records"]] == [f"RP-{code}-2"]   # no longer published
    after = credit.GetStanding(pb.GetStandingRequest(subject_id=subject.id), metadata=DEPT)
    assert after.score == 100 - 15                                                 # no longer counting
    records = credit.ListRecords(pb.ListRecordsRequest(subject_id=subject.id), metadata=DEPT).records
    repair = records[-1]
    assert (repair.id, repair.kind, repair.supersedes, repair.reason) == \
        (decided.repair_record_id, "repair", ordinary, "corrected and inspected; fine paid")
    assert [r.id for r in records[:2]] == [ordinary, serious]                      # nothing edited or deleted
    history = credit.ListRepairs(pb.ListRepairsRequest(record_id=ordinary), metadata=ADMIN).applications
    assert [(a.id, a.status, a.decision_reason) for a in history] == \
        [(applied.id, "approved", "corrected and inspected; fine paid")]
    twice = call_error(credit.DecideRepair, pb.DecideRepairRequest(application_id=applied.id, approve=False,
                                                                   reason="changed my mind"), metadata=ADMIN)
    assert twice.code() == grpc.StatusCode.FAILED_PRECONDITION and "approved already" in twice.details()
    assert credit.VerifyChain(pb.VerifyChainRequest(), metadata=ADMIN).intact


def test_a_refused_repair_keeps_its_row_and_the_record_through_the_cli(environment, authorities, credit):
    code = _fresh_uscc()
    (record,) = send(penalty(code, f"RF-{code}", 120, 4))

    def gridbus(*args):
        run = subprocess.run([GRIDBUS, "credit", "repair", *args], env=environment, capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout
    applied = gridbus("apply", record, "--applicant", "Legal rep. Zhao", "--evidence", "promised to fix",
                      "--corrected-on", day(-10))
    application = applied.split()[0]
    assert "(pending)" in applied
    refused = gridbus("decide", application, "--refuse", "--reason", "no inspection report")
    assert "refused" in refused and "no inspection report" in refused
    assert "refused" in gridbus("list", code)
    subject = credit.GetSubject(pb.GetSubjectRequest(uscc=code), metadata=ADMIN)
    assert credit.GetStanding(pb.GetStandingRequest(subject_id=subject.id), metadata=DEPT).score == 97  # still counts
    assert [r.kind for r in credit.ListRecords(pb.ListRecordsRequest(subject_id=subject.id), metadata=DEPT).records] \
        == ["penalty"]
    second = gridbus("apply", record, "--applicant", "Legal rep. Zhao", "--evidence", "inspection report no. 7",
                     "--corrected-on", day(-2))
    assert "(pending)" in second  # after a refusal, a new application may follow
    history = credit.ListRepairs(pb.ListRepairsRequest(subject_id=subject.id), metadata=ADMIN).applications
    assert [a.status for a in history] == ["refused", "pending"]


def test_a_procurement_system_is_refused_a_black_listed_bidder_and_every_check_is_logged(authorities, credit):
    debtor, clean, unknown, scored = _fresh_uscc(), _fresh_uscc(), _fresh_uscc(), _fresh_uscc()
    send({"authority": "FY-COURT", "decision_number": f"(2026)浙01执{debtor[-6:]}号", "decision_date": day(-20),
          "kind": "list_entry", "list": "court.dishonest_debtors", "subject_code": debtor,
          "subject_name": "Debtor Builders Co.", "legal_basis": "最高人民法院关于公布失信被执行人名单信息的若干规定 第一条",
          "valid_until": day(710)},
         {"authority": "SW-TAX", "decision_number": f"税A-{clean}", "decision_date": day(-20), "kind": "list_entry",
          "list": "tax.a_grade", "subject_code": clean, "subject_name": "Clean Builders Co.",
          "legal_basis": "纳税信用管理办法 第二十条"},
         {"authority": "FY-COURT", "decision_number": f"(2024)浙01执{clean[-6:]}号", "decision_date": day(-400),
          "kind": "list_entry", "list": "court.dishonest_debtors", "subject_code": clean,
          "legal_basis": "SPC rules, art. 1", "valid_until": day(-1)},      # it ended yesterday
         penalty(scored, f"SC-{scored}", 10, 1, name="Serious Polluter Co."))

    def check(code, action="public_procurement", who=PROCUREMENT, purpose="bid 2026-117 for the ring road"):
        return credit.CheckRestriction(pb.CheckRestrictionRequest(uscc=code, action=action, purpose=purpose),
                                       metadata=who)
    refused = check(debtor)
    assert refused.restricted and refused.subject_known and refused.as_of.seconds > 0
    (r,) = refused.restrictions
    assert (r.list, r.authority, r.basis, r.decision_number, r.since, r.until) == (
        "court.dishonest_debtors", "FY-COURT", "最高人民法院关于公布失信被执行人名单信息的若干规定 第一条",
        f"(2026)浙01执{debtor[-6:]}号", day(-20), day(710))
    assert not check(clean).restricted                        # a red list restricts nothing; the entry has ended
    assert not check(scored).restricted                       # the registry's black list: not procurement here...
    subsidy = check(scored, action="subsidy")                 # ...but subsidies
    assert subsidy.restricted and [(x.list, x.authority, x.basis) for x in subsidy.restrictions] == \
        [("black", "", "the registry's scoring rules")]
    nobody = check(unknown)
    assert not nobody.restricted and not nobody.subject_known

    for bad, code in ((pb.CheckRestrictionRequest(uscc=debtor, action="flying", purpose="p"),
                       grpc.StatusCode.INVALID_ARGUMENT),
                      (pb.CheckRestrictionRequest(uscc=debtor, action="subsidy"), grpc.StatusCode.INVALID_ARGUMENT)):
        assert call_error(credit.CheckRestriction, bad, metadata=PROCUREMENT).code() == code
    for who in (metadata(token("officer", "330100")), metadata(token("dispatcher", "330100")), ADMIN):
        assert call_error(credit.CheckRestriction, pb.CheckRestrictionRequest(uscc=debtor, action="subsidy",
                                                                              purpose="curious"),
                          metadata=who).code() == grpc.StatusCode.PERMISSION_DENIED
    with session_scope() as s:
        logged = s.execute(text(
            "SELECT coalesce(sub.uscc, a.subject_ref) AS code, a.reader_id, a.reader_role, a.what, a.purpose "
            "FROM credit.access_log a LEFT JOIN credit.subjects sub ON sub.id = a.subject_id "
            "WHERE a.reader_id = 'GOV-PROCUREMENT' AND coalesce(sub.uscc, a.subject_ref) = ANY(:codes) ORDER BY a.id"),
            {"codes": [debtor, clean, unknown, scored]}).all()
    assert [(x.code, x.what) for x in logged] == [
        (debtor, "restriction check public_procurement: restricted by court.dishonest_debtors"),
        (clean, "restriction check public_procurement: not restricted"),
        (scored, "restriction check public_procurement: not restricted"),
        (scored, "restriction check subsidy: restricted by black"),
        (unknown, "restriction check public_procurement: not restricted")]
    assert {(x.reader_role, x.purpose) for x in logged} == {("department", "bid 2026-117 for the ring road")}


def test_every_event_credit_stored_matches_its_events_proto(authorities):
    """After the repairs and checks above (and whatever else this run made): each payload in the
    credit outbox, the event store, is what events.proto says it is."""
    with session_scope() as s:
        events = s.execute(text("SELECT type, data FROM credit.outbox ORDER BY id")).mappings().all()
    assert {"credit.record.added", "credit.list.changed", "credit.repair.applied", "credit.repair.decided"} <= \
        {e["type"] for e in events}
    assert_payloads_match_protos(events)
