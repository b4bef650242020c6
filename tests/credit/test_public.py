"""The public endpoint on the real servers: what the public may know about an enterprise, on the
boundaries of publication periods, never anything about people, always as of when; and the
endpoint's limits (413, 429 with Retry-After, typed errors, OpenAPI, health)."""
from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from services.credit import disclosure, intake
from services.credit import operations as ops
from services.credit.operations import rules
from shared.auth import PUBLIC_READER
from shared.errors import NotFound, PermissionDenied
from tests.conftest import SYSTEM
from tests.credit.conftest import PUBLIC_RATE
from tests.credit.test_credit import _fresh_uscc
from tests.credit.test_domain import ID_EXAMPLE
from tests.support import http_get


def day(offset: int):
    return intake.today() + timedelta(days=offset)


def noon(d) -> datetime:
    return datetime.combine(d, time(12), tzinfo=rules().timezone)


def send(*rows):
    report = intake.import_records(SYSTEM, list(enumerate(rows, start=1)))
    assert report.count(intake.INSERTED) == len(rows), report.outcomes
    return report


def penalty(code, number, decided, severity, name="Boundary Co.", **extra):
    return {"authority": "HB-ENV", "decision_number": number, "decision_date": decided.isoformat(), "kind": "penalty",
            "subject_code": code, "subject_name": name, "legal_basis": "大气污染防治法 第一百一十八条",
            "severity": severity, **extra}


def published_numbers(code, at) -> list[str]:
    return [r.decision_number for r in disclosure.public_profile(PUBLIC_READER, uscc=code, at=at)[0].records]


def test_publication_periods_on_their_boundaries(authorities):
    """An ordinary penalty is public from its decision day for a year, a serious one for three
    (the sample rules); the day before, the first day, the last day and the day after."""
    code = _fresh_uscc()
    decided = day(-400)
    send(penalty(code, f"O-{code}", decided, 3), penalty(code, f"S-{code}", decided, 1),
         penalty(code, f"P-{code}", decided, 4, publish_until=(decided + timedelta(days=99)).isoformat()))
    ordinary_last = decided + timedelta(days=364)
    serious_last = decided + timedelta(days=1094)
    asked_shorter_last = decided + timedelta(days=99)
    assert published_numbers(code, noon(decided - timedelta(days=1))) == []
    assert published_numbers(code, noon(decided)) == [f"O-{code}", f"S-{code}", f"P-{code}"]
    assert published_numbers(code, noon(asked_shorter_last)) == [f"O-{code}", f"S-{code}", f"P-{code}"]
    assert published_numbers(code, noon(asked_shorter_last + timedelta(days=1))) == [f"O-{code}", f"S-{code}"]
    assert published_numbers(code, noon(ordinary_last)) == [f"O-{code}", f"S-{code}"]
    assert published_numbers(code, noon(ordinary_last + timedelta(days=1))) == [f"S-{code}"]
    assert published_numbers(code, noon(serious_last)) == [f"S-{code}"]
    assert published_numbers(code, noon(serious_last + timedelta(days=1))) == []
    # The first and last moments of a day in the operator's zone belong to that day.
    midnight = datetime.combine(ordinary_last + timedelta(days=1), time(0), tzinfo=rules().timezone)
    assert published_numbers(code, midnight - timedelta(microseconds=1)) == [f"O-{code}", f"S-{code}"]
    assert published_numbers(code, midnight) == [f"S-{code}"]


def test_an_enterprise_by_code_and_by_name_over_http(authorities, credit_public):
    code = _fresh_uscc()
    name = f"Public Kitchen Co. {code[-6:]}"
    send(penalty(code, f"H-{code}", day(-3), 3, name=name, summary="fumes; fined 20,000 yuan"),
         {"authority": "FY-COURT", "decision_number": f"L-{code}", "decision_date": day(-3).isoformat(),
          "kind": "list_entry", "list": "court.dishonest_debtors", "subject_code": code,
          "legal_basis": "最高人民法院关于公布失信被执行人名单信息的若干规定 第一条", "valid_until": day(700).isoformat()})
    status, headers, body = http_get(f"{credit_public}/credit/v1/enterprises/{code.lower()}", client="198.51.100.1")
    assert status == 200 and headers["content-type"] == "application/json"
    assert body["as_of"].endswith("Z") and body["date"] == day(0).isoformat()
    assert body["enterprise"] == {"code": code, "name": name, "name_verified": True}
    (record,) = body["records"]
    assert record == {"kind": "penalty", "category": "penalty", "severity": "ordinary", "authority": "HB-ENV",
                      "authority_name": "生态环境局 Ecology and Environment Bureau", "decision_number": f"H-{code}",
                      "decision_date": day(-3).isoformat(), "legal_basis": "大气污染防治法 第一百一十八条",
                      "summary": "fumes; fined 20,000 yuan", "published_from": day(-3).isoformat(),
                      "published_until": day(-3 + 364).isoformat()}
    assert [(m["code"], m["colour"], m["authority"], m["until"]) for m in body["lists"]] == \
        [("court.dishonest_debtors", "black", "FY-COURT", day(700).isoformat())]
    status, _, by_name = http_get(f"{credit_public}/credit/v1/enterprises?name={name.replace(' ', '%20')}",
                                  client="198.51.100.1")
    assert status == 200 and by_name["as_of"] and [r["enterprise"]["code"] for r in by_name["results"]] == [code]


def test_nothing_about_people_is_ever_shown(authorities, credit_public):
    """A person on a court's list, and an enterprise with the person's name: the public finds the
    enterprise only; the operations refuse the public reader every other read."""
    code = _fresh_uscc()
    send({"authority": "FY-COURT", "decision_number": f"PERSON-{code}", "decision_date": day(-1).isoformat(),
          "kind": "list_entry", "list": "court.dishonest_debtors", "subject_type": "person",
          "subject_code": ID_EXAMPLE, "subject_name": "Li Si", "legal_basis": "SPC rules, art. 1"})
    person = ops.get_subject(SYSTEM, id_number=ID_EXAMPLE, purpose="test: the person's registered name")
    query = f"{credit_public}/credit/v1/enterprises?name={person.name.replace(' ', '%20')}"
    status, _, body = http_get(query, client="198.51.100.2")
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"
    send(penalty(code, f"N-{code}", day(-1), 3, name=person.name))
    status, _, body = http_get(query, client="198.51.100.2")
    assert status == 200 and [r["enterprise"]["code"] for r in body["results"]] == [code]
    assert person.code not in str(body) and ID_EXAMPLE[:6] not in str(body)
    with pytest.raises(PermissionDenied):
        ops.get_subject(PUBLIC_READER, subject_id=person.id)
    with pytest.raises(PermissionDenied):
        ops.list_records(PUBLIC_READER, person.id)
    with pytest.raises(PermissionDenied):
        ops.get_standing(PUBLIC_READER, person.id)
    with pytest.raises(PermissionDenied):  # staff reads are not the public's, even of an enterprise
        ops.get_subject(PUBLIC_READER, uscc=code)
    with pytest.raises(NotFound):
        disclosure.public_profile(PUBLIC_READER, name="Li Si (no such enterprise)")


def test_the_endpoint_limits_and_errors(authorities, credit_public):
    code = _fresh_uscc()
    send(penalty(code, f"R-{code}", day(-1), 3))
    status, _, body = http_get(f"{credit_public}/credit/v1/enterprises/{code}", client="203.0.113.9", method="POST",
                               body=b"x" * (64 * 1024))
    assert status == 413 and body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    status, _, body = http_get(f"{credit_public}/credit/v1/enterprises/{code[:-1]}?", client="203.0.113.10")
    assert status == 400 and "18 characters" in body["error"]["message"]
    status, _, body = http_get(f"{credit_public}/credit/v1/enterprises", client="203.0.113.10")
    assert status == 400 and body["error"]["code"] == "INVALID_ARGUMENT"
    status, _, body = http_get(f"{credit_public}/nowhere", client="203.0.113.10")
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"
    statuses = [http_get(f"{credit_public}/credit/v1/enterprises/{code}", client="203.0.113.77")[0]
                for _ in range(PUBLIC_RATE)]
    assert statuses == [200] * PUBLIC_RATE
    status, headers, body = http_get(f"{credit_public}/credit/v1/enterprises/{code}", client="203.0.113.77")
    assert status == 429 and body["error"]["code"] == "RATE_LIMITED" and 1 <= int(headers["retry-after"]) <= 60
    assert http_get(f"{credit_public}/credit/v1/enterprises/{code}", client="203.0.113.78")[0] == 200  # another client
    assert http_get(f"{credit_public}/healthz", client="203.0.113.77")[:3:2] == (200, {"status": "SERVING"})
    status, _, spec = http_get(f"{credit_public}/openapi.json", client="203.0.113.79")
    assert status == 200 and {"/credit/v1/enterprises/{code}", "/credit/v1/enterprises"} <= set(spec["paths"])
