"""Records from other departments on the real servers: CSV and JSON lines batches through the CLI
(a bad row reported by line and reason, a repeated decision never recorded twice), one record
pushed over gRPC, a gRPC stream with per-item outcomes, chunks that keep the chain whole, and
the list change a department's list entry announces."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import grpc

from gridbus.credit.v1 import credit_pb2 as pb
from services.credit import intake
from tests.conftest import SYSTEM
from tests.credit.test_credit import ADMIN, DEPT, _fresh_uscc, enterprise
from tests.incidents.test_report import call_error
from tests.support import EventTap, metadata, token

GRIDBUS = str(Path(sys.executable).parent / "gridbus")
HB_ENV = metadata(token("department", "330100", member_id="HB-ENV"))
COURT = metadata(token("department", "330100", member_id="FY-COURT"))


def gridbus(environment, *args):
    return subprocess.run([GRIDBUS, "credit", *args], env=environment, capture_output=True, text=True, timeout=120)


def day(offset: int) -> str:
    return (intake.today() + timedelta(days=offset)).isoformat()


def records_of(credit, uscc: str):
    subject = credit.GetSubject(pb.GetSubjectRequest(uscc=uscc), metadata=ADMIN)
    return subject, list(credit.ListRecords(pb.ListRecordsRequest(subject_id=subject.id), metadata=DEPT).records)


def test_a_csv_batch_through_the_cli(environment, authorities, credit, tmp_path):
    fined, listed, taxed = _fresh_uscc(), _fresh_uscc(), _fresh_uscc()
    old = enterprise(credit, fined, "Fined Co.")  # in the registry already, with a record of the old kind
    credit.AddRecord(pb.AddRecordRequest(subject_id=old.id, kind="violation", category="0302", severity=4),
                     metadata=ADMIN)
    columns = ["authority", "decision_number", "decision_date", "kind", "subject_code", "subject_name",
               "legal_basis", "severity", "list", "summary"]
    rows = [
        ["HB-ENV", f"环罚〔2026〕{fined[-6:]}号", day(-30), "penalty", fined, "", "大气污染防治法 第一百一十八条", "3", "",
         "fumes from the kitchen; fined 20,000 yuan"],
        ["FY-COURT", f"(2026)浙01执{listed[-6:]}号", day(-10), "list_entry", listed, "Debtor Trading Co.",
         "最高人民法院关于公布失信被执行人名单信息的若干规定 第一条", "", "court.dishonest_debtors", ""],
        ["HB-ENV", "环罚〔2026〕BAD号", day(-5), "penalty", fined[:-1] + ("0" if fined[-1] != "0" else "1"), "",
         "art. 118", "3", "", ""],
        ["SW-TAX", f"税A〔2026〕{taxed[-6:]}号", day(-60), "list_entry", taxed, "Honest Taxpayer Co.",
         "纳税信用管理办法 第二十条", "", "tax.a_grade", ""],
        ["HB-ENV", f"环罚〔2026〕{fined[-6:]}号", day(-30), "penalty", fined, "", "大气污染防治法 第一百一十八条", "3", "",
         "the same decision, sent twice in one file"],
    ]
    path = tmp_path / "departments.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([columns, *rows])
    report = tmp_path / "report.csv"
    run = gridbus(environment, "import", str(path), "--report", str(report))
    assert run.returncode == 1, run.stderr  # a refused row makes the exit status 1
    assert "line 4: refused: subject_code: check character" in run.stdout
    assert f"line 6: duplicate: decision 环罚〔2026〕{fined[-6:]}号 of HB-ENV is on line 2 already" in run.stdout
    assert "inserted 3, duplicates 1, refused 1" in run.stdout
    assert "importing" in run.stderr and "5/5" in run.stderr  # the progress bar
    with open(report, encoding="utf-8") as f:
        outcomes = [(int(r["line"]), r["outcome"]) for r in csv.DictReader(f)]
    assert outcomes == [(2, "inserted"), (3, "inserted"), (4, "refused"), (5, "inserted"), (6, "duplicate")]

    subject, records = records_of(credit, fined)
    penalty = [r for r in records if r.kind == "penalty"][0]
    assert (penalty.authority, penalty.legal_basis, penalty.decision_date, penalty.severity) == \
        ("HB-ENV", "大气污染防治法 第一百一十八条", day(-30), 3)
    assert (penalty.published_from, penalty.published_until) == (day(-30), day(-30 + 364))  # ordinary: a year
    newcomer, entries = records_of(credit, listed)
    assert newcomer.name == "Debtor Trading Co." and entries[0].list == "court.dishonest_debtors"
    standing = credit.GetStanding(pb.GetStandingRequest(subject_id=newcomer.id), metadata=DEPT)
    assert list(standing.lists) == ["court.dishonest_debtors"]

    again = gridbus(environment, "import", str(path))
    assert "inserted 0, duplicates 4, refused 1" in again.stdout
    assert f"line 2: duplicate: recorded already (record {penalty.id})" in again.stdout
    assert len(records_of(credit, fined)[1]) == 2  # the old violation and the one penalty
    verified = credit.VerifyChain(pb.VerifyChainRequest(), metadata=ADMIN)
    assert verified.intact, verified.reason


def test_a_jsonl_batch_through_the_cli(environment, authorities, credit, tmp_path):
    code = _fresh_uscc()
    lines = [
        json.dumps({"authority": "SCJG-MARKET", "decision_number": f"市监罚〔2026〕{code[-5:]}号",
                    "decision_date": day(-200), "kind": "penalty", "subject_code": code,
                    "subject_name": "Scales Market Co.", "legal_basis": "计量法 第二十七条", "severity": 1},
                   ensure_ascii=False),
        '{"authority": "SCJG-MARKET", "decision_number": ',
        json.dumps({"authority": "NO-SUCH-BUREAU", "decision_number": "X-1", "decision_date": day(-1),
                    "kind": "penalty", "subject_code": code, "legal_basis": "-", "severity": 2}),
        "",
        json.dumps({"authority": "SCJG-MARKET", "decision_number": f"市监许〔2026〕{code[-5:]}号",
                    "decision_date": day(-3), "kind": "licence", "subject_code": code, "legal_basis": "食品安全法 第三十五条",
                    "summary": "food business licence"}, ensure_ascii=False),
        json.dumps({"authority": "SCJG-MARKET", "decision_number": f"市监罚〔2026〕{code[-5:]}号",
                    "decision_date": day(-200), "kind": "penalty", "subject_code": code, "legal_basis": "计量法 第二十七条",
                    "severity": 1}, ensure_ascii=False),
    ]
    path = tmp_path / "market.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = gridbus(environment, "import", str(path))
    assert "line 2: refused: not JSON" in run.stdout
    assert "line 3: refused: authority 'NO-SUCH-BUREAU' is not known to the registry" in run.stdout
    assert f"line 6: duplicate: decision 市监罚〔2026〕{code[-5:]}号 of SCJG-MARKET is on line 1 already" in run.stdout
    assert "inserted 2, duplicates 1, refused 2" in run.stdout
    _, records = records_of(credit, code)
    assert sorted(r.kind for r in records) == ["licence", "penalty"]
    serious = [r for r in records if r.kind == "penalty"][0]
    assert serious.published_until == day(-200 + 1094)  # serious: three years


def test_one_record_pushed_by_a_department_over_grpc(authorities, credit):
    code = _fresh_uscc()
    message = pb.ExternalRecord(authority="HB-ENV", decision_number=f"环罚〔2026〕{code[-7:]}号", decision_date=day(-2),
                                kind="penalty", subject_code=code, subject_name="Pushed Co.",
                                legal_basis="水污染防治法 第八十三条", severity=2)
    first = credit.AddExternalRecord(message, metadata=HB_ENV)
    assert first.created and first.record.confirmed_by == "HB-ENV" and first.record.decision_number
    retry = credit.AddExternalRecord(message, metadata=HB_ENV)
    assert not retry.created and retry.record.id == first.record.id
    other = pb.ExternalRecord()
    other.CopyFrom(message)
    other.subject_code, other.subject_name = _fresh_uscc(), "Someone Else Co."
    err = call_error(credit.AddExternalRecord, other, metadata=HB_ENV)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS and first.record.id in err.details()
    err = call_error(credit.AddExternalRecord, message, metadata=COURT)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "authority 'HB-ENV'" in err.details()
    message.severity = 0
    err = call_error(credit.AddExternalRecord, message, metadata=HB_ENV)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "severity is required" in err.details()
    err = call_error(credit.AddExternalRecord, message, metadata=metadata(token("officer", "330100")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_grpc_stream_answers_each_item(authorities, credit):
    code = _fresh_uscc()

    def item(number, **kw):
        return pb.ExternalRecord(**{"authority": "FY-COURT", "decision_number": number, "decision_date": day(-1),
                                    "kind": "list_entry", "list": "court.dishonest_debtors", "subject_code": code,
                                    "subject_name": "Streamed Co.", "legal_basis": "SPC rules, art. 1", **kw})
    batch = [item(f"S-{code}-1"), item(f"S-{code}-2", list="tax.a_grade"), item(f"S-{code}-1")]
    reply = credit.ImportRecords(iter(batch), metadata=COURT)
    assert [(r.index, r.outcome) for r in reply.results] == [(1, "inserted"), (2, "refused"), (3, "duplicate")]
    assert "keeps no list 'tax.a_grade'" in reply.results[1].message
    assert (reply.inserted, reply.duplicates, reply.refused) == (1, 1, 1)


def test_chunks_continue_one_chain_and_announce_list_changes(environment, authorities, credit, credit_nameko):
    """Rows are written chunk by chunk; the chain runs on across chunks, and each list entry
    announces the subject's list change with what a department filters on."""
    codes = [_fresh_uscc() for _ in range(7)]
    items = [(i + 1, {"authority": "FY-COURT", "decision_number": f"C-{c}", "decision_date": day(-1),
                      "kind": "list_entry", "list": "court.dishonest_debtors", "subject_code": c,
                      "subject_name": f"Chunked Co. {i}", "legal_basis": "SPC rules, art. 1"})
             for i, c in enumerate(codes)]
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "credit.list.changed")
    try:
        seen = []
        report = intake.import_records(SYSTEM, items, chunk_rows=3, progress=seen.append)
        events = tap.drain(lambda ev: {e["data"]["subject_code"] for e in ev} >= set(codes))
    finally:
        tap.close()
    assert report.count(intake.INSERTED) == 7 and seen == [0, 3, 3, 1]
    assert credit.VerifyChain(pb.VerifyChainRequest(), metadata=ADMIN).intact
    mine = [e["data"] for e in events if e["data"]["subject_code"] in codes]
    assert len(mine) == 7
    assert all(d["lists"] == ["court.dishonest_debtors"] and d["previous_lists"] == [] and d["cause"] == "record"
               and d["subject_type"] == "enterprise" and d["division"] == d["subject_code"][2:8] for d in mine)


def test_a_file_with_an_unknown_column_is_refused_whole(environment, authorities, tmp_path):
    path = tmp_path / "typo.csv"
    path.write_text("authority,decision_number,decison_date,kind,subject_code,legal_basis\n", encoding="utf-8")
    run = gridbus(environment, "import", str(path))
    assert run.returncode != 0 and "unknown column(s) decison_date" in run.stderr
