"""Taking reports in: idempotent on the phone's report id, pinned to a grid, linked to likely duplicates."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from services.incidents import criteria, domain, report_rules, store
from services.incidents.operations.pinning import pin
from services.incidents.operations.views import SCHEMA, ReportResult, event_data, view_of
from shared import auth
from shared.auth import Principal
from shared.config import settings
from shared.datum import Datum
from shared.db import session_scope
from shared.errors import AlreadyExists, Aborted, InvalidArgument, NotFound
from shared.outbox import record_event
from shared.timefmt import utcnow


def duplicate_radius_m() -> float:
    return settings().duplicate_radius_m


def duplicate_window() -> timedelta:
    return timedelta(hours=settings().duplicate_window_hours)


def report(caller: Principal, *, report_id: str, category_code: str, title: str, description: str,
           lon: float, lat: float, accuracy_m: float, occurred_at: datetime | None, attachments=(),
           subject_type: str = "", subject_ref: str = "", now: datetime | None = None,
           datum: Datum = Datum.WGS84) -> ReportResult:
    """Stores a report once per report id, pinned to its grid; a retry returns the first result.
    (lon, lat) are in `datum`; the point is converted to WGS 84 before it is pinned and stored,
    and kept as sent."""
    auth.require_role(caller, auth.OFFICER, auth.SERVICE)
    now = now or utcnow()
    draft = report_rules.make_draft(
        report_id=report_id, category_code=category_code, title=title, description=description,
        lon=lon, lat=lat, accuracy_m=accuracy_m, occurred_at=occurred_at, attachments=attachments,
        subject_type=subject_type, subject_ref=subject_ref, now=now,
        stamp_missing_time=caller.role == auth.SERVICE, in_datum=datum)
    content_hash = draft.content_hash()
    try:
        return _store_report(caller, draft, content_hash, now)
    except _Raced:
        # Another copy of the same report committed first (a phone retrying quickly).
        with session_scope() as session:
            replay = _replay(session, caller, draft.report_id, content_hash)
        if replay is None:
            raise Aborted("the report was being stored concurrently; retry")
        return replay


SHIFTED = (Datum.GCJ02, Datum.BD09)  # the datums whose points move when converted


class _Raced(Exception):
    pass


def _store_report(caller: Principal, draft: report_rules.Draft, content_hash: str, now: datetime) -> ReportResult:
    with session_scope() as session:
        replay = _replay(session, caller, draft.report_id, content_hash)
        if replay:
            return replay
        category = store.active_category(session, draft.category_code)
        if category is None:
            raise InvalidArgument(f"unknown category {draft.category_code}; see ListCategories")
        criteria.check_filing(draft.category_code, category.criteria,
                              has_photo=any(a.media_type.startswith("image/") for a in draft.attachments),
                              has_subject=draft.subject is not None, has_description=bool(draft.description.strip()))
        pinned = pin(session, draft.lon, draft.lat)
        if pinned is None:
            raise NotFound(f"point ({draft.lon}, {draft.lat}) lies outside every grid"
                           + (f" (sent as ({draft.sent_lon}, {draft.sent_lat}) in {draft.datum.value})"
                              if draft.datum in SHIFTED else ""))
        grid_code, lineage = pinned
        report_rules.may_report(caller, lineage)
        duplicate_of = store.find_duplicate(session, draft.category_code, draft.lon, draft.lat,
                                            duplicate_radius_m(), now - duplicate_window())
        incident_id = uuid.uuid4()
        inserted = store.insert_incident(session, dict(
            id=incident_id, report_id=uuid.UUID(draft.report_id), content_hash=content_hash,
            reporter_id=caller.member_id, reporter_role=caller.role, category_code=draft.category_code,
            title=draft.title, description=draft.description,
            location=f"SRID=4326;POINT({draft.lon!r} {draft.lat!r})", accuracy_m=draft.accuracy_m,
            occurred_at=draft.occurred_at, grid_code=grid_code, lineage=lineage,
            status=domain.REPORTED, version=1, priority=category.priority, duplicate_of=duplicate_of,
            subject_type=draft.subject.type if draft.subject else None,
            subject_ref=draft.subject.ref if draft.subject else None,
            attachments=[a.__dict__ for a in draft.attachments], location_sent_lon=draft.sent_lon,
            location_sent_lat=draft.sent_lat, location_sent_datum=draft.datum.value))
        if not inserted:
            raise _Raced()
        store.append_history(session, incident_id=incident_id, version=1, action="report",
                             from_status=None, to_status=domain.REPORTED, actor_id=caller.member_id,
                             actor_role=caller.role, note=None, department_code=None)
        view = view_of(store.get(session, incident_id))
        record_event(session, SCHEMA, domain.REPORTED_EVENT, f"incidents/{incident_id}",
                     event_data(view, previous_status=None, actor_id=caller.member_id,
                                actor_role=caller.role, note=None, at=view.reported_at),
                     subject_sequence=1)
        return ReportResult(view, replayed=False)


def _replay(session: Session, caller: Principal, report_id: str, content_hash: str) -> ReportResult | None:
    row = store.by_report_id(session, report_id)
    if row is None:
        return None
    incident: store.Incident = row[0]
    if incident.content_hash != content_hash or incident.reporter_id != caller.member_id:
        raise AlreadyExists(f"report {report_id} was already used for a different report; "
                            "a new report needs a new report_id")
    return ReportResult(view_of(row), replayed=True)
