"""Sharing rules alone (no server): the authorities file, rows from departments in CSV and JSON
lines, publication periods, repair eligibility, joint punishment, and the chain's canonical form
for records written before decisions from departments existed."""
from __future__ import annotations

import io
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from services.credit import domain, sharing
from services.credit.operations import rules
from shared.errors import InvalidArgument
from tests.credit.test_domain import ID_EXAMPLE, REAL_USCC

AUTHORITIES_FILE = Path(sharing.__file__).parent / "config" / "authorities.yaml"
TODAY = date(2026, 11, 25)
KEY = "k" * 32


@pytest.fixture(scope="module")
def directory():
    return sharing.parse_directory(yaml.safe_load(AUTHORITIES_FILE.read_text(encoding="utf-8")))


def penalty(**overrides) -> dict:
    row = {"authority": "HB-ENV", "decision_number": "环罚〔2026〕12号", "decision_date": "2026-10-01",
           "kind": "penalty", "subject_code": REAL_USCC[0], "subject_name": "Example Co.",
           "legal_basis": "大气污染防治法 第一百一十八条", "severity": "3", "summary": "fumes; fined 20,000 yuan"}
    row.update(overrides)
    return row


def check(raw, directory, **kw):
    return sharing.check_row(raw, 7, directory, rules(), TODAY, KEY, **kw)


# --- the chain -----------------------------------------------------------------------------

OLD_RECORD = {"id": uuid.UUID("7d3f0e2a-1b4c-4d5e-8f60-1a2b3c4d5e6f"),
              "subject_id": uuid.UUID("0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9"), "kind": "violation",
              "category": "0107", "severity": 3, "source": "event:5b0f0000-0000-4000-8000-000000000001",
              "incident_id": None, "valid_from": datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc),
              "valid_until": datetime(2029, 3, 1, 2, 0, tzinfo=timezone.utc), "confirmed_by": "dispatcher-1",
              "supersedes": None, "reason": None, "created_at": datetime(2026, 3, 1, 2, 0, 0, 500, tzinfo=timezone.utc)}


def test_records_from_before_decisions_hash_as_they_always_did():
    """Hashes computed by the registry before records carried decisions (golden values)."""
    first = domain.record_hash(domain.GENESIS, domain.content_of(OLD_RECORD))
    appeal = dict(OLD_RECORD, id=uuid.UUID("8d3f0e2a-1b4c-4d5e-8f60-1a2b3c4d5e6f"), kind="annulment",
                  supersedes=OLD_RECORD["id"], reason="appeal upheld")
    assert first == "c8d855b7321b171fbb876aae5e61ef45bcb8d76b32d24f4a2388c9a80d6920ce"
    assert domain.record_hash(first, domain.content_of(appeal)) == \
        "df468472158eafc978d7a1d8e04761a50ed4ce922a51001b694d1eb679d70ab7"
    # A row read back from the database has the new columns, empty: the same content.
    stored = SimpleNamespace(**OLD_RECORD, **{k: None for k in domain.DECISION_FIELDS})
    assert domain.content_of(stored) == domain.content_of(OLD_RECORD)


def test_a_decision_is_part_of_the_hashed_content():
    decided = dict(OLD_RECORD, kind="penalty", authority="HB-ENV", decision_number="环罚〔2026〕12号",
                   decision_date=date(2026, 3, 1), legal_basis="art. 118",
                   published_from=date(2026, 3, 1), published_until=date(2027, 2, 28))
    content = domain.content_of(decided)
    assert content["decision_date"] == "2026-03-01" and content["published_until"] == "2027-02-28"
    altered = dict(decided, decision_number="环罚〔2026〕13号")
    assert domain.record_hash(domain.GENESIS, content) != domain.record_hash(domain.GENESIS, domain.content_of(altered))


# --- the directory -------------------------------------------------------------------------

def test_the_bundled_authorities_file_is_valid(directory):
    assert directory.authorities["FY-COURT"].lists == {"court.dishonest_debtors"}
    assert "public_procurement" in directory.lists["court.dishonest_debtors"].restricts
    assert directory.lists["black"].computed and not directory.lists["tax.a_grade"].computed


@pytest.mark.parametrize("change,reason", [
    (lambda d: d["lists"][2].update(restricts=["flying"]), "not among the actions"),
    (lambda d: d["lists"][2].update(colour="grey"), "colour is black or red"),
    (lambda d: d["lists"].pop(0), "declare the registry's own black"),
    (lambda d: d["authorities"][0].update(kinds=["violation"]), "kinds are some of"),
    (lambda d: d["authorities"][1].update(lists=["black"]), "not a department's list"),
    (lambda d: d["authorities"][1].update(kinds=["penalty"]), "list_entry must be among its kinds"),
    (lambda d: d["authorities"].append(dict(d["authorities"][0])), "declared twice"),
    (lambda d: d["lists"][5].update(restricts=["subsidy"]), "a red list restricts nothing"),
])
def test_a_bad_authorities_file_is_refused_with_the_reason(change, reason):
    doc = yaml.safe_load(AUTHORITIES_FILE.read_text(encoding="utf-8"))
    change(doc)
    with pytest.raises(InvalidArgument, match=reason):
        sharing.parse_directory(doc)


def test_the_rules_file_is_checked():
    doc = yaml.safe_load((Path(sharing.__file__).parent / "config" / "rules.yaml").read_text(encoding="utf-8"))
    bad = dict(doc, publication={"penalty": {"x": {"severities": [1], "min_days": 400, "max_days": 365}}})
    with pytest.raises(InvalidArgument, match="min_days <= max_days"):
        domain.parse_rules(bad)
    with pytest.raises(InvalidArgument, match="timezone"):
        domain.parse_rules(dict(doc, timezone="Mars/Olympus"))
    with pytest.raises(InvalidArgument, match="unknown kind"):
        domain.parse_rules(dict(doc, repair={"fine": {1: 3}}))


def test_penalties_may_be_repaired_after_their_minimum_publication_period():
    """The sample rules tie the two, as the NDRC order does: one figure must not drift from the other."""
    r = rules()
    for band in r.publication["penalty"]:
        assert {s: r.repair_days["penalty"][s] for s in band.severities} == {s: band.min_days for s in band.severities}


# --- rows ----------------------------------------------------------------------------------

def test_a_good_penalty_row(directory):
    row = check(penalty(), directory)
    assert (row.authority, row.kind, row.uscc, row.severity, row.category) == \
        ("HB-ENV", "penalty", REAL_USCC[0], 3, "penalty")
    assert row.valid_from == datetime(2026, 10, 1, tzinfo=rules().timezone)
    # An ordinary penalty: published for a year by default, the decision day being day 1.
    assert (row.published_from, row.published_until) == (date(2026, 10, 1), date(2027, 9, 30))
    serious = check(penalty(severity="1"), directory)
    assert serious.published_until == date(2026, 10, 1) + timedelta(days=1095 - 1)  # periods are counted in days


@pytest.mark.parametrize("overrides,reason", [
    ({"authority": "NOBODY"}, "authority 'NOBODY' is not known"),
    ({"kind": "list_entry", "list": "court.dishonest_debtors"}, "does not issue list_entry"),
    ({"kind": "violation"}, "kind 'violation' is not one of"),
    ({"subject_code": "91350100M000100Y44"}, "subject_code: check character"),
    ({"decision_date": "2026-13-01"}, "is not a date"),
    ({"decision_date": "2026-11-26"}, "after today"),
    ({"severity": ""}, "severity is required for a penalty"),
    ({"severity": "5"}, "severity is 1"),
    ({"legal_basis": " "}, "legal_basis is required"),
    ({"publish_until": "2026-11-01"}, "32 days of publication; a ordinary penalty is published for 90 to 365"),
    ({"publish_until": "2027-10-01"}, "366 days"),
    ({"list": "tax.a_grade"}, "only a list_entry names a list"),
    ({"valid_until": "2026-09-01"}, "valid_until must be after valid_from"),
    ({"colour": "black"}, "unknown field"),
    ({"subject_type": "person", "subject_code": "110105194912310021"}, "subject_code: the check digit"),
    ({"subject_type": "ghost"}, "subject_type is enterprise or person"),
])
def test_bad_rows_are_refused_with_the_reason(directory, overrides, reason):
    with pytest.raises(InvalidArgument, match=reason.replace("(", r"\(")):
        check(penalty(**overrides), directory)


def test_list_entries_and_people(directory):
    entry = check({"authority": "FY-COURT", "decision_number": "(2026)浙01执123号", "decision_date": "2026-06-01",
                   "kind": "list_entry", "list": "court.dishonest_debtors", "subject_type": "person",
                   "subject_code": ID_EXAMPLE, "legal_basis": "最高人民法院关于公布失信被执行人名单信息的若干规定 第一条",
                   "valid_until": "2028-06-01"}, directory)
    assert entry.list_code == "court.dishonest_debtors" and entry.id_masked == "110105********002X"
    assert ID_EXAMPLE not in repr(entry) and entry.uscc is None
    assert (entry.published_from, entry.published_until) == (None, None)  # list entries: shown as lists
    with pytest.raises(InvalidArgument, match="keeps no list 'market.serious_violations'"):
        check({**penalty(), "authority": "FY-COURT", "kind": "list_entry", "list": "market.serious_violations"},
              directory)
    with pytest.raises(InvalidArgument, match="may not send records for authority HB-ENV"):
        check(penalty(), directory, may_act_for=lambda code: code == "SCJG-MARKET")


def test_csv_and_jsonl_rows_carry_their_line_numbers(directory):
    text = ("authority,decision_number,decision_date,kind,subject_code,subject_name,legal_basis,severity\n"
            f"HB-ENV,A-1,2026-10-01,penalty,{REAL_USCC[0]},Example Co.,art. 118,3\n"
            "\n"
            f"HB-ENV,A-2,2026-10-01,penalty,{REAL_USCC[1]},Other Co.,art. 118,\n"
            f"HB-ENV,A-1,2026-10-02,penalty,{REAL_USCC[2]},Third Co.,art. 118,4\n"
            f"HB-ENV,A-3,2026-10-01,penalty,{REAL_USCC[2]}\n")
    rows, refused, repeated = sharing.check_rows(sharing.read_csv(io.StringIO(text)), directory, rules(), TODAY, KEY)
    assert [r.line for r in rows] == [2]
    assert [(r.line, r.reason) for r in refused] == [
        (4, "severity is required for a penalty (1-2 serious, 3-4 ordinary)"),
        (6, "5 fields, but the header has 8")]
    assert [(r.line, r.reason) for r in repeated] == [(5, "decision A-1 of HB-ENV is on line 2 already")]
    jsonl = (f'{{"authority": "HB-ENV", "decision_number": "B-1", "decision_date": "2026-10-01", "kind": "penalty", '
             f'"subject_code": "{REAL_USCC[0]}", "legal_basis": "art. 118", "severity": 2}}\n'
             '{"authority": "HB-ENV", \n'
             '["not", "an", "object"]\n')
    rows, refused, _ = sharing.check_rows(sharing.read_jsonl(io.StringIO(jsonl)), directory, rules(), TODAY, KEY)
    assert [(r.line, r.severity) for r in rows] == [(1, 2)]
    assert [r.line for r in refused] == [2, 3] and "not JSON" in refused[0].reason


def test_a_csv_header_with_an_unknown_column_refuses_the_file():
    with pytest.raises(InvalidArgument, match="unknown column.*decison_date"):
        list(sharing.read_csv(io.StringIO("authority,decision_number,decison_date\n")))
    with pytest.raises(InvalidArgument, match="missing required column.*legal_basis"):
        list(sharing.read_csv(io.StringIO("authority,decision_number,decision_date,kind,subject_code\n")))


# --- publication, repair, restriction ------------------------------------------------------

def published(first: date, last: date, id_="r1", supersedes=None):
    return SimpleNamespace(id=id_, supersedes=supersedes, published_from=first, published_until=last)


def test_publication_covers_its_first_and_last_days_only():
    r = published(date(2026, 10, 1), date(2027, 9, 30))
    assert [sharing.published_on(r, d) for d in (date(2026, 9, 30), date(2026, 10, 1), date(2027, 9, 30),
                                                 date(2027, 10, 1))] == [False, True, True, False]
    assert not sharing.published_on(published(None, None), date(2026, 10, 1))


def test_a_superseded_record_is_no_longer_public():
    original = published(date(2026, 10, 1), date(2027, 9, 30))
    repair = SimpleNamespace(id="r2", supersedes="r1", published_from=None, published_until=None)
    assert sharing.public_records([original], date(2026, 10, 5)) == [original]
    assert sharing.public_records([original, repair], date(2026, 10, 5)) == []


def test_repair_waits_for_the_minimum_period():
    assert sharing.repairable_from(rules(), "penalty", 3, date(2026, 1, 1)) == date(2026, 1, 1) + timedelta(days=90)
    assert sharing.repairable_from(rules(), "penalty", 1, date(2026, 1, 1)) == date(2027, 1, 1)
    with pytest.raises(InvalidArgument, match="cannot be repaired"):
        sharing.repairable_from(rules(), "commendation", 2, date(2026, 1, 1))


def test_which_lists_restrict_an_action(directory):
    on = ["red", "court.dishonest_debtors", "market.abnormal_operations"]
    assert sharing.restricting(on, directory, "public_procurement") == ["court.dishonest_debtors"]
    assert sharing.restricting(on, directory, "honours") == ["court.dishonest_debtors", "market.abnormal_operations"]
    assert sharing.restricting(["black"], directory, "subsidy") == ["black"]
    with pytest.raises(InvalidArgument, match="action 'flying' is not one of"):
        sharing.restricting(on, directory, "flying")


def test_a_department_list_entry_puts_the_subject_on_that_list_while_in_force():
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    entry = domain.Record("e1", "list_entry", 4, t0, t0 + timedelta(days=100), t0, None, "court.dishonest_debtors")
    assert domain.standing([entry], rules(), t0 + timedelta(days=1)).lists == ["court.dishonest_debtors"]
    assert domain.standing([entry], rules(), t0 + timedelta(days=100)).lists == []
    serious_penalty = domain.Record("p1", "penalty", 1, t0, t0 + timedelta(days=100), t0, None)
    assert domain.standing([serious_penalty, entry], rules(), t0 + timedelta(days=1)).lists == \
        ["black", "court.dishonest_debtors"]
    # Known later than the moment asked about: counted only when asked with known_by.
    late = domain.Record("p2", "penalty", 1, t0, t0 + timedelta(days=100), t0 + timedelta(days=50), None)
    assert domain.standing([late], rules(), t0 + timedelta(days=1)).lists == []
    assert domain.standing([late], rules(), t0 + timedelta(days=1), known_by=t0 + timedelta(days=60)).lists == ["black"]
