"""Credit repair (信用修复): an enterprise that has corrected what it did applies, after the
record's minimum period, to have it repaired; an operator approves or refuses it with a reason.
Approval appends a record of kind `repair` that supersedes the original, so the original stops
being published and stops counting from then on, and stays in the chain as it was. Applications
and decisions are appended too, refusals included."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from services.credit import sharing, store
from services.credit.intake import today
from services.credit.operations import SCHEMA, append_record, rules
from shared import auth
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.ids import parse_uuid
from shared.outbox import record_event

RECORDERS = (auth.ADMIN, auth.SERVICE, auth.DEPARTMENT)   # staff record an enterprise's application
DECIDERS = (auth.ADMIN, auth.SERVICE)


@dataclass(frozen=True)
class RepairView:
    id: str
    record_id: str
    subject_id: str
    applicant: str
    evidence: str
    corrected_on: date
    applied_on: date
    received_by: str
    at: datetime
    status: str                  # pending, approved or refused
    decision_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    repair_record_id: str | None


def _view(row) -> RepairView:
    status = "pending" if row.approved is None else ("approved" if row.approved else "refused")
    return RepairView(str(row.id), str(row.record_id), str(row.subject_id), row.applicant, row.evidence,
                      row.corrected_on, row.applied_on, row.received_by, row.at, status, row.decision_reason,
                      row.decided_by, row.decided_at, str(row.repair_record_id) if row.repair_record_id else None)


def _text(value: str, what: str, limit: int) -> str:
    value = (value or "").strip()
    if not value or len(value) > limit:
        raise InvalidArgument(f"{what} is required (at most {limit} characters)")
    return value


def apply_repair(caller: Principal, *, record_id: str, applicant: str, evidence: str, corrected_on: str | date,
                 now: datetime | None = None) -> RepairView:
    """Records an application. Refused (FAILED_PRECONDITION) before the minimum period, for a
    record already superseded, or while another application for it is pending."""
    auth.require_role(caller, *RECORDERS)
    applicant = _text(applicant, "applicant", 200)
    evidence = _text(evidence, "evidence of the correction", 4000)
    on = today(now)
    try:
        corrected = corrected_on if isinstance(corrected_on, date) else date.fromisoformat(str(corrected_on))
    except ValueError:
        raise InvalidArgument(f"corrected_on {corrected_on!r} is not a date (YYYY-MM-DD)")
    if corrected > on:
        raise InvalidArgument("corrected_on is after today")
    rid = parse_uuid(record_id, "record id")
    with session_scope() as session:
        store.lock_repairs_of(session, rid)
        record = store.record(session, rid)
        if record is None:
            raise NotFound(f"no record {record_id}")
        if caller.role == auth.DEPARTMENT and record.authority != caller.member_id:
            raise PermissionDenied("a department records applications about its own decisions")
        if store.superseded_by(session, rid):
            raise FailedPrecondition(f"record {record_id} was superseded already; nothing is left to repair")
        pending = [a for a in store.repair_applications(session, record_id=rid) if a.approved is None]
        if pending:
            raise FailedPrecondition(f"application {pending[0].id} for this record awaits a decision")
        since = record.decision_date or record.valid_from.astimezone(rules().timezone).date()
        try:
            earliest = sharing.repairable_from(rules(), record.kind, record.severity, since)
        except InvalidArgument as exc:
            raise FailedPrecondition(exc.message)
        if on < earliest:
            raise FailedPrecondition(f"this record may be repaired from {earliest}, after the minimum period for "
                                     f"{record.kind} records of severity {record.severity}")
        if corrected < since:
            raise InvalidArgument(f"corrected_on is before the record ({since})")
        values = {"id": uuid.uuid4(), "record_id": rid, "subject_id": record.subject_id, "applicant": applicant,
                  "evidence": evidence, "corrected_on": corrected, "applied_on": on, "received_by": caller.member_id}
        store.insert_repair_application(session, values)
        record_event(session, SCHEMA, "credit.repair.applied", f"subjects/{record.subject_id}", {
            "application_id": str(values["id"]), "record_id": str(rid), "subject_id": str(record.subject_id),
            "applied_on": on.isoformat(), "received_by": caller.member_id})
        return _view(store.repair_applications(session, application_id=values["id"])[0])


def decide_repair(caller: Principal, *, application_id: str, approve: bool, reason: str) -> RepairView:
    """An operator's decision, with its reason. Approval appends the repair record."""
    auth.require_role(caller, *DECIDERS)
    reason = _text(reason, "reason", 2000)
    aid = parse_uuid(application_id, "application id")
    with session_scope() as session:
        found = store.repair_applications(session, application_id=aid)
        if not found:
            raise NotFound(f"no repair application {application_id}")
        store.lock_repairs_of(session, found[0].record_id)
        application = store.repair_applications(session, application_id=aid)[0]
        if application.approved is not None:
            raise FailedPrecondition(f"application {application_id} was {_view(application).status} already")
        repair_record = None
        if approve:
            original = store.record(session, application.record_id)
            if store.superseded_by(session, original.id):
                raise FailedPrecondition(f"record {original.id} was superseded since the application; refuse it")
            repair_record = append_record(session, application.subject_id, kind="repair",
                                    category=original.category, severity=original.severity,
                                    source=f"repair:{aid}", incident_id=None, confirmed_by=caller.member_id,
                                    supersedes=original.id, reason=reason).id
        store.insert_repair_decision(session, {"application_id": aid, "approved": approve, "reason": reason,
                                               "decided_by": caller.member_id, "repair_record_id": repair_record})
        record_event(session, SCHEMA, "credit.repair.decided", f"subjects/{application.subject_id}", {
            "application_id": str(aid), "record_id": str(application.record_id),
            "subject_id": str(application.subject_id), "approved": approve, "reason": reason,
            "decided_by": caller.member_id, "repair_record_id": repair_record})
        return _view(store.repair_applications(session, application_id=aid)[0])


def list_repairs(caller: Principal, *, subject_id: str = "", record_id: str = "") -> list[RepairView]:
    """Applications with their decisions, oldest first, for a subject or a record."""
    auth.require_role(caller, auth.ADMIN, auth.SERVICE, auth.DEPARTMENT)
    if bool(subject_id) == bool(record_id):
        raise InvalidArgument("name a subject_id or a record_id")
    with session_scope() as session:
        if subject_id:
            rows = store.repair_applications(session, subject_id=parse_uuid(subject_id, "subject id"))
        else:
            rows = store.repair_applications(session, record_id=parse_uuid(record_id, "record id"))
        return [_view(r) for r in rows]
