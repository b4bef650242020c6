"""Sharing credit information with other departments and the public: the directory of issuing
authorities and their lists, the schema of the records departments send, what the public may
see and when, credit repair and joint punishment. Plain Python, no I/O.

A department's record is a decision: its authority, decision number and date, legal basis, kind
(penalty, licence, commendation, list entry) and publication period. The registry keeps one
record per (authority, decision number), whatever is sent again."""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable, Iterator

from services.credit import domain
from shared.errors import InvalidArgument

IMPORT_KINDS = ("penalty", "licence", "commendation", "list_entry")
COLOURS = ("black", "red")

# The batch schema (CSV header names, JSON keys): name -> what it is. README documents it.
FIELDS = {
    "authority": "code of the issuing authority, known to the registry (gridbus credit load-authorities)",
    "decision_number": "the decision's number (文号), at most 100 characters; one record per authority and number",
    "decision_date": "YYYY-MM-DD, not after today",
    "kind": "penalty, licence, commendation or list_entry, one the authority may issue",
    "subject_type": "enterprise (default) or person",
    "subject_code": "unified social credit code, or a person's resident identity number",
    "subject_name": "registered name; needed when the subject is not in the registry yet",
    "legal_basis": "the law and article the decision rests on, at most 500 characters",
    "summary": "what was decided, at most 2000 characters (optional)",
    "category": "the department's own category code, at most 32 characters (optional; default the kind)",
    "severity": "1 (most serious) to 4; required for penalties (1-2 serious, 3-4 ordinary), default 4",
    "list": "list_entry only: the code of the list, one the authority keeps",
    "valid_from": "YYYY-MM-DD the record counts from (default the decision date)",
    "valid_until": "YYYY-MM-DD it stops counting (default from rules.yaml validity_days)",
    "publish_until": "YYYY-MM-DD, the last day it is published (default the longest period rules.yaml allows)",
}
REQUIRED = ("authority", "decision_number", "decision_date", "kind", "subject_code", "legal_basis")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- the directory -------------------------------------------------------------------------

@dataclass(frozen=True)
class Authority:
    code: str
    name: str
    kinds: frozenset
    lists: frozenset
    active: bool = True


@dataclass(frozen=True)
class ListDef:
    code: str
    name: str
    colour: str
    restricts: frozenset
    computed: bool = False
    active: bool = True


@dataclass(frozen=True)
class Directory:
    authorities: dict   # code -> Authority
    lists: dict         # code -> ListDef
    actions: dict       # code -> description


def _text(value, what: str, limit: int) -> str:
    value = "" if value is None else str(value).strip()
    if not value:
        raise InvalidArgument(f"{what} is required")
    if len(value) > limit or _CONTROL.search(value):
        raise InvalidArgument(f"{what}: at most {limit} characters, no control characters")
    return value


def parse_directory(doc) -> Directory:
    """The operator's authorities file, checked as a whole; InvalidArgument names what is wrong."""
    if not isinstance(doc, dict):
        raise InvalidArgument("authorities file: a mapping with actions, lists and authorities")
    actions = {_text(k, "action code", 40): _text(v, f"action {k} description", 200)
               for k, v in (doc.get("actions") or {}).items()}
    lists, authorities = {}, {}
    try:
        for item in doc.get("lists") or []:
            code = _text(item.get("code"), "list code", 40)
            if code in lists:
                raise InvalidArgument(f"list {code} is declared twice")
            colour = item.get("colour")
            if colour not in COLOURS:
                raise InvalidArgument(f"list {code}: colour is black or red")
            restricts = frozenset(item.get("restricts") or [])
            if unknown := restricts - actions.keys():
                raise InvalidArgument(f"list {code} restricts {', '.join(sorted(unknown))}, not among the actions")
            computed = bool(item.get("computed", False))
            if computed != (code in domain.COMPUTED_LISTS):
                raise InvalidArgument(f"list {code}: only {' and '.join(domain.COMPUTED_LISTS)} are computed "
                                      "by the registry, and they are")
            if colour == "red" and restricts:
                raise InvalidArgument(f"list {code}: a red list restricts nothing")
            lists[code] = ListDef(code, _text(item.get("name"), f"list {code} name", 200), colour, restricts, computed)
        if missing := set(domain.COMPUTED_LISTS) - lists.keys():
            raise InvalidArgument(f"lists: declare the registry's own {', '.join(sorted(missing))}")
        for item in doc.get("authorities") or []:
            code = _text(item.get("code"), "authority code", 40)
            if code in authorities:
                raise InvalidArgument(f"authority {code} is declared twice")
            kinds = frozenset(item.get("kinds") or [])
            if not kinds or kinds - set(IMPORT_KINDS):
                raise InvalidArgument(f"authority {code}: kinds are some of {', '.join(IMPORT_KINDS)}")
            own = frozenset(item.get("lists") or [])
            if bad := {c for c in own if c not in lists or lists[c].computed}:
                raise InvalidArgument(f"authority {code} keeps {', '.join(sorted(bad))}, not a department's list here")
            if own and "list_entry" not in kinds:
                raise InvalidArgument(f"authority {code} keeps lists, so list_entry must be among its kinds")
            authorities[code] = Authority(code, _text(item.get("name"), f"authority {code} name", 200), kinds, own)
    except AttributeError:
        raise InvalidArgument("authorities file: every list and authority is a mapping")
    if not authorities:
        raise InvalidArgument("authorities file: no authorities")
    return Directory(authorities, lists, actions)


# --- rows from departments -----------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """A checked record from a department, ready to be written. A person is held by the keyed
    hash and the mask of their identity number, never the number."""
    line: int
    authority: str
    decision_number: str
    decision_date: date
    kind: str
    subject_type: str
    uscc: str | None
    id_lookup: str | None
    id_masked: str | None
    subject_name: str | None
    legal_basis: str
    summary: str | None
    category: str
    severity: int
    list_code: str | None
    valid_from: datetime
    valid_until: datetime
    published_from: date | None
    published_until: date | None

    @property
    def decision(self) -> tuple[str, str]:
        return self.authority, self.decision_number


@dataclass(frozen=True)
class Refused:
    line: int
    reason: str


def _date(value, what: str) -> date | None:
    value = "" if value is None else str(value).strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"{what} {value!r} is not a date (YYYY-MM-DD)")


def _optional(raw: dict, key: str, limit: int) -> str | None:
    value = raw.get(key)
    return _text(value, key, limit) if value not in (None, "") and str(value).strip() else None


def start_of(day: date, rules: domain.Rules) -> datetime:
    """Midnight at the start of a calendar day in the operator's zone."""
    return datetime.combine(day, time(0), tzinfo=rules.timezone)


def publication_period(rules: domain.Rules, kind: str, severity: int, decided: date,
                       publish_until: date | None = None) -> tuple[date | None, date | None]:
    """(first day, last day) the public sees a record, or (None, None) when its kind is never
    published. The decision day is day 1; the period is the band's longest unless asked shorter."""
    band = rules.band(kind, severity)
    if band is None:
        if publish_until is not None:
            raise InvalidArgument(f"{kind} records of severity {severity} are not published; leave publish_until out")
        return None, None
    if publish_until is None:
        return decided, decided + timedelta(days=band.max_days - 1)
    days = (publish_until - decided).days + 1
    if not band.min_days <= days <= band.max_days:
        raise InvalidArgument(f"publish_until gives {days} days of publication; a {band.name} {kind} is published "
                              f"for {band.min_days} to {band.max_days} days from its decision date")
    return decided, publish_until


def check_row(raw: dict, line: int, directory: Directory, rules: domain.Rules, today: date, id_key: str,
              may_act_for=None) -> Row:
    """One record from a department, checked; InvalidArgument with the reason when it is bad.
    `may_act_for(authority code) -> bool` says whether the sender may send for that authority."""
    if not isinstance(raw, dict):
        raise InvalidArgument("a record is an object of the documented fields")
    if unknown := sorted(set(raw) - FIELDS.keys()):
        raise InvalidArgument(f"unknown field(s) {', '.join(unknown)}")
    for key in REQUIRED:
        if raw.get(key) is None or not str(raw.get(key)).strip():
            raise InvalidArgument(f"{key} is required")
    code = _text(raw["authority"], "authority", 40)
    authority = directory.authorities.get(code)
    if authority is None or not authority.active:
        raise InvalidArgument(f"authority {code!r} is not known to the registry")
    if may_act_for is not None and not may_act_for(code):
        raise InvalidArgument(f"you may not send records for authority {code}")
    kind = str(raw["kind"]).strip()
    if kind not in IMPORT_KINDS:
        raise InvalidArgument(f"kind {kind!r} is not one of {', '.join(IMPORT_KINDS)}")
    if kind not in authority.kinds:
        raise InvalidArgument(f"authority {code} does not issue {kind} records")
    number = _text(raw["decision_number"], "decision_number", 100)
    decided = _date(raw["decision_date"], "decision_date")
    if decided > today:
        raise InvalidArgument(f"decision_date {decided} is after today ({today})")

    subject_type = str(raw.get("subject_type") or domain.ENTERPRISE).strip()
    if subject_type not in (domain.ENTERPRISE, domain.PERSON):
        raise InvalidArgument(f"subject_type is {domain.ENTERPRISE} or {domain.PERSON}")
    uscc = id_lookup = id_masked = None
    try:
        if subject_type == domain.ENTERPRISE:
            uscc = domain.check_uscc(str(raw["subject_code"]))
        else:
            id_number = domain.check_id_number(str(raw["subject_code"]))
            id_lookup, id_masked = domain.id_lookup_key(id_number, id_key), domain.mask_id(id_number)
    except InvalidArgument as exc:
        raise InvalidArgument(f"subject_code: {exc.message}")

    severity_raw = raw.get("severity")
    if severity_raw in (None, "") or not str(severity_raw).strip():
        if kind == "penalty":
            raise InvalidArgument("severity is required for a penalty (1-2 serious, 3-4 ordinary)")
        severity = 4
    else:
        try:
            severity = int(str(severity_raw).strip())
        except ValueError:
            severity = 0
        if not 1 <= severity <= 4:
            raise InvalidArgument(f"severity is 1 (most serious) to 4, not {severity_raw!r}")

    list_code = _optional(raw, "list", 40)
    if kind == "list_entry":
        if list_code is None:
            raise InvalidArgument("a list_entry names its list")
        known = directory.lists.get(list_code)
        if list_code not in authority.lists or known is None or not known.active:
            raise InvalidArgument(f"authority {code} keeps no list {list_code!r}")
    elif list_code is not None:
        raise InvalidArgument("only a list_entry names a list")

    valid_from_day = _date(raw.get("valid_from"), "valid_from") or decided
    if valid_from_day < decided:
        raise InvalidArgument("valid_from is before the decision date")
    valid_from = start_of(valid_from_day, rules)
    valid_until_day = _date(raw.get("valid_until"), "valid_until")
    valid_until = (start_of(valid_until_day, rules) if valid_until_day else
                   valid_from + timedelta(days=rules.validity_days.get(kind, 1095)))
    if valid_until <= valid_from:
        raise InvalidArgument("valid_until must be after valid_from")
    published_from, published_until = publication_period(rules, kind, severity, decided,
                                                         _date(raw.get("publish_until"), "publish_until"))
    return Row(line=line, authority=code, decision_number=number, decision_date=decided, kind=kind,
               subject_type=subject_type, uscc=uscc, id_lookup=id_lookup, id_masked=id_masked,
               subject_name=_optional(raw, "subject_name", 200), legal_basis=_text(raw["legal_basis"], "legal_basis", 500),
               summary=_optional(raw, "summary", 2000), category=_optional(raw, "category", 32) or kind,
               severity=severity, list_code=list_code, valid_from=valid_from, valid_until=valid_until,
               published_from=published_from, published_until=published_until)


def check_rows(items: Iterable[tuple[int, dict | InvalidArgument]], directory: Directory, rules: domain.Rules,
               today: date, id_key: str, may_act_for=None) -> tuple[list[Row], list[Refused], list[Refused]]:
    """(rows to write, refused rows, rows repeating a decision earlier in the same batch)."""
    rows, refused, repeated, seen = [], [], [], {}
    for line, raw in items:
        if isinstance(raw, InvalidArgument):
            refused.append(Refused(line, raw.message))
            continue
        try:
            row = check_row(raw, line, directory, rules, today, id_key, may_act_for)
        except InvalidArgument as exc:
            refused.append(Refused(line, exc.message))
            continue
        if row.decision in seen:
            repeated.append(Refused(line, f"decision {row.decision_number} of {row.authority} is on line "
                                          f"{seen[row.decision]} already"))
            continue
        seen[row.decision] = line
        rows.append(row)
    return rows, refused, repeated


def read_csv(lines: Iterable[str]) -> Iterator[tuple[int, dict | InvalidArgument]]:
    """(line number, fields) per row of a CSV file with a header row; a row that does not fit the
    header comes as an InvalidArgument. A header naming an unknown or missing no required column
    refuses the whole file (InvalidArgument raised), since every row would be misread."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise InvalidArgument("the file is empty; the first line is the header")
    header = [h.strip().lstrip("\ufeff") for h in header]
    if unknown := [h for h in header if h not in FIELDS]:
        raise InvalidArgument(f"header: unknown column(s) {', '.join(unknown)}; the columns are {', '.join(FIELDS)}")
    if missing := [k for k in REQUIRED if k not in header]:
        raise InvalidArgument(f"header: missing required column(s) {', '.join(missing)}")
    if len(set(header)) != len(header):
        raise InvalidArgument("header: a column is named twice")
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, InvalidArgument(f"not CSV: {exc}")
            continue
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            yield reader.line_num, InvalidArgument(f"{len(values)} fields, but the header has {len(header)}")
            continue
        yield reader.line_num, dict(zip(header, values))


def read_jsonl(lines: Iterable[str]) -> Iterator[tuple[int, dict | InvalidArgument]]:
    """(line number, object) per non-blank line of a JSON lines file."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, InvalidArgument(f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            yield number, InvalidArgument("not a record: nested too deeply")
            continue
        yield number, value if isinstance(value, dict) else InvalidArgument("each line is one JSON object")


# --- what the public sees ------------------------------------------------------------------

def published_on(record, day: date) -> bool:
    """Whether a record's publication period covers the day (first and last days included)."""
    return (record.published_from is not None and record.published_until is not None
            and record.published_from <= day <= record.published_until)


def public_records(records: list, day: date) -> list:
    """The records the public may see on the day: published then, and not superseded (a
    correction, an upheld appeal or a credit repair ends a record's publication)."""
    superseded = {str(r.supersedes) for r in records if r.supersedes}
    return [r for r in records if str(r.id) not in superseded and published_on(r, day)]


# --- credit repair -------------------------------------------------------------------------

def repairable_from(rules: domain.Rules, kind: str, severity: int, since: date) -> date:
    """The first day an application to repair the record may be made; InvalidArgument when its
    kind is not repairable."""
    days = rules.repair_days.get(kind, {}).get(severity)
    if days is None:
        raise InvalidArgument(f"{kind} records of severity {severity} cannot be repaired")
    return since + timedelta(days=days)


# --- joint punishment ----------------------------------------------------------------------

def restricting(lists_on: Iterable[str], directory: Directory, action: str) -> list[str]:
    """Of the lists a subject is on, those that restrict the action; InvalidArgument for an
    action the directory does not know."""
    if action not in directory.actions:
        raise InvalidArgument(f"action {action!r} is not one of {', '.join(sorted(directory.actions))}")
    return [code for code in lists_on
            if code in directory.lists and directory.lists[code].active and action in directory.lists[code].restricts]
