"""What the operations return, and the payload of every incident event."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


from services.incidents import domain, report_rules, store
from shared.datum import Datum
from shared.timefmt import iso_utc


SCHEMA = store.SCHEMA
MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_IDS = 200


@dataclass
class IncidentView:
    id: str
    report_id: str
    category_code: str
    title: str
    description: str
    lon: float
    lat: float
    accuracy_m: float
    occurred_at: datetime
    reported_at: datetime
    reporter_id: str
    grid_code: str
    lineage: list[str]
    status: str
    version: int
    priority: int
    department_code: str | None
    duplicate_of: str | None
    subject: report_rules.Subject | None
    attachments: list[dict]
    violation_confirmed: bool | None
    updated_at: datetime
    sent: tuple[float, float, Datum] | None = None  # the location as the phone sent it (lon, lat are WGS 84)
    pending: str | None = None         # a side procedure's request waiting for its decision
    review_at: datetime | None = None  # a parked case comes back then
    supervised: bool = False
    assisting: list[str] = field(default_factory=list)  # assisting departments (协办) still at work


@dataclass
class HistoryView:
    version: int
    action: str
    from_status: str | None
    to_status: str
    actor_id: str
    actor_role: str
    note: str | None
    department_code: str | None
    at: datetime


@dataclass
class ReportResult:
    incident: IncidentView
    replayed: bool  # True: a retry of a report already stored; nothing new was written


@dataclass
class Filters:
    grid_code: str | None = None
    statuses: list[str] = field(default_factory=list)
    category_code: str | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    ids: list[str] = field(default_factory=list)


def view_of(row) -> IncidentView:
    i: store.Incident = row[0]
    return IncidentView(
        id=str(i.id), report_id=str(i.report_id), category_code=i.category_code, title=i.title,
        description=i.description, lon=row.lon, lat=row.lat, accuracy_m=i.accuracy_m,
        occurred_at=i.occurred_at, reported_at=i.reported_at, reporter_id=i.reporter_id,
        grid_code=i.grid_code, lineage=list(i.lineage), status=i.status, version=i.version,
        priority=i.priority, department_code=i.department_code,
        duplicate_of=str(i.duplicate_of) if i.duplicate_of else None,
        subject=report_rules.Subject(i.subject_type, i.subject_ref) if i.subject_type else None,
        attachments=list(i.attachments), violation_confirmed=i.violation_confirmed, updated_at=i.updated_at,
        sent=(i.location_sent_lon, i.location_sent_lat, Datum(i.location_sent_datum))
        if i.location_sent_datum else None,
        pending=i.pending, review_at=i.review_at, supervised=bool(i.supervised), assisting=list(i.assisting or ()))


def event_data(v: IncidentView, *, previous_status: str | None, actor_id: str, actor_role: str,
               note: str | None, at: datetime) -> dict:
    """The payload of every incidents.incident.* event (IncidentEventData in events.proto)."""
    return {
        "incident_id": v.id, "report_id": v.report_id, "version": v.version, "status": v.status,
        "previous_status": previous_status, "category": v.category_code, "priority": v.priority,
        "grid_code": v.grid_code, "lineage": v.lineage,
        "location": {"lon": v.lon, "lat": v.lat, "accuracy_m": v.accuracy_m},
        "occurred_at": iso_utc(v.occurred_at), "reported_at": iso_utc(v.reported_at),
        "reporter_id": v.reporter_id, "department_code": v.department_code,
        "subject": {"type": v.subject.type, "ref": v.subject.ref} if v.subject else None,
        "duplicate_of": v.duplicate_of, "actor": {"id": actor_id, "role": actor_role}, "note": note,
        "violation_confirmed": bool(v.violation_confirmed), "at": iso_utc(at),
        "pending": v.pending, "review_at": iso_utc(v.review_at), "supervised": v.supervised,
        "clock_paused": domain.clock_paused(v.status, v.pending), "assisting": v.assisting,
    }
