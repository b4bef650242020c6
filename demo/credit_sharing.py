"""The demo's credit-sharing step: other departments' decisions arrive as a batch (one row is
bad and reported), the public endpoint shows an enterprise before and after a credit repair,
and a procurement system is refused a bidder on a court's list of dishonest debtors."""
from __future__ import annotations

import csv
import json
import tempfile
import urllib.request
from datetime import timedelta
from pathlib import Path

from gridbus.credit.v1 import credit_pb2 as cpb
from services import registry
from shared.auth import mint_token
from shared.health import wait_until


def _public(port: int, code: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/credit/v1/enterprises/{code}", timeout=5) as reply:
        return json.loads(reply.read())


def _show(body: dict) -> None:
    e = body["enterprise"]
    print(f"   public view of {e['code']} {e['name']} as of {body['as_of']}:")
    for r in body["records"]:
        print(f"     {r['kind']} {r['decision_number']} by {r['authority']} ({r['severity']}), "
              f"published {r['published_from']}..{r['published_until']}: {r['summary']}")
    for m in body["lists"]:
        print(f"     on {m['code']} ({m['name']}) since {m['since']}")
    if not body["records"] and not body["lists"]:
        print("     nothing published, on no list")


def run(credit, admin, enterprises) -> None:
    from services.credit.intake import today
    from services.cli import main as gridbus
    kitchen, builders, market = enterprises
    decided = today() - timedelta(days=100)
    rows = [
        ["authority", "decision_number", "decision_date", "kind", "subject_code", "legal_basis", "severity", "list",
         "summary"],
        ["HB-ENV", "环罚〔2026〕0101号", decided.isoformat(), "penalty", kitchen.code, "大气污染防治法 第一百一十八条", "3", "",
         "cooking fumes without purification; fined 20,000 yuan"],
        ["FY-COURT", "(2026)浙01执0457号", (today() - timedelta(days=30)).isoformat(), "list_entry", builders.code,
         "最高人民法院关于公布失信被执行人名单信息的若干规定 第一条", "", "court.dishonest_debtors", ""],
        ["SW-TAX", "税A〔2026〕0012号", (today() - timedelta(days=60)).isoformat(), "list_entry", market.code,
         "纳税信用管理办法 第二十条", "", "tax.a_grade", ""],
        ["HB-ENV", "环罚〔2026〕0102号", decided.isoformat(), "penalty", market.code[:-1] + "?", "环境保护法 第六十三条", "2",
         "", "a code mistyped at the bureau"],
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "departments.csv"
        with open(path, "w", encoding="utf-8", newline="") as f:
            csv.writer(f).writerows(rows)
        print(f"== credit sharing: the environment bureau, the court and the tax bureau send {len(rows) - 1} "
              "decisions (gridbus credit import departments.csv)")
        try:
            gridbus(["credit", "import", str(path)])
        except SystemExit:
            pass  # a refused row makes the exit status 1; its line and reason are printed above

    port = registry.port("credit", registry.HTTP)
    wait_until(lambda: _public(port, kitchen.code))
    _show(_public(port, kitchen.code))
    record_id = next(r.id for r in credit.ListRecords(cpb.ListRecordsRequest(subject_id=kitchen.id),
                                                        metadata=admin).records if r.kind == "penalty")
    application = credit.ApplyRepair(cpb.ApplyRepairRequest(
        record_id=record_id, applicant=f"{kitchen.name}, legal representative",
        evidence="purifier installed, inspected on site; fine paid",
        corrected_on=(today() - timedelta(days=20)).isoformat()), metadata=admin)
    decided_repair = credit.DecideRepair(cpb.DecideRepairRequest(
        application_id=application.id, approve=True, reason="corrected; minimum publication period served"),
        metadata=admin)
    print(f"   credit repair {application.id[:8]} applied and {decided_repair.status}: repair record "
          f"{decided_repair.repair_record_id[:8]} supersedes the penalty")
    _show(_public(port, kitchen.code))

    procurement = [("authorization", f"Bearer {mint_token('GOV-PROCUREMENT', 'department', [])}")]
    for bidder in (builders, market):
        answer = credit.CheckRestriction(cpb.CheckRestrictionRequest(
            uscc=bidder.code, action="public_procurement", purpose="tender 2026-117, ring road lighting"),
            metadata=procurement)
        if answer.restricted:
            r = answer.restrictions[0]
            print(f"   procurement check of {bidder.name}: REFUSED, on {r.list} by {r.authority_name} "
                  f"({r.decision_number}), basis: {r.basis}")
        else:
            print(f"   procurement check of {bidder.name}: may bid")
