"""What the incidents service does, called by both entry points (gRPC and nameko).

Each operation checks who is calling, validates, changes the store, appends to the audit
trail and records its event, all in one transaction: a failure anywhere writes nothing."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.incidents import domain, store
from shared import auth
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.errors import AlreadyExists, Aborted, FailedPrecondition, InvalidArgument, NotFound
from shared.ids import parse_uuid
from shared.inbox import first_delivery
from shared.outbox import record_event
from shared.timefmt import iso_utc, utcnow

log = logging.getLogger(__name__)

SCHEMA = store.SCHEMA
MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_IDS = 200


def duplicate_radius_m() -> float:
    return settings().duplicate_radius_m


def duplicate_window() -> timedelta:
    return timedelta(hours=settings().duplicate_window_hours)


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
    subject: domain.Subject | None
    attachments: list[dict]
    violation_confirmed: bool | None
    updated_at: datetime


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


def _view(row) -> IncidentView:
    i: store.Incident = row[0]
    return IncidentView(
        id=str(i.id), report_id=str(i.report_id), category_code=i.category_code, title=i.title,
        description=i.description, lon=row.lon, lat=row.lat, accuracy_m=i.accuracy_m,
        occurred_at=i.occurred_at, reported_at=i.reported_at, reporter_id=i.reporter_id,
        grid_code=i.grid_code, lineage=list(i.lineage), status=i.status, version=i.version,
        priority=i.priority, department_code=i.department_code,
        duplicate_of=str(i.duplicate_of) if i.duplicate_of else None,
        subject=domain.Subject(i.subject_type, i.subject_ref) if i.subject_type else None,
        attachments=list(i.attachments), violation_confirmed=i.violation_confirmed, updated_at=i.updated_at)


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
    }


# --- intake --------------------------------------------------------------------------------

def report(caller: Principal, *, report_id: str, category_code: str, title: str, description: str,
           lon: float, lat: float, accuracy_m: float, occurred_at: datetime | None, attachments=(),
           subject_type: str = "", subject_ref: str = "", now: datetime | None = None) -> ReportResult:
    """Stores a report once per report id, pinned to its grid; a retry returns the first result."""
    auth.require_role(caller, auth.OFFICER, auth.SERVICE)
    now = now or utcnow()
    draft = domain.make_draft(
        report_id=report_id, category_code=category_code, title=title, description=description,
        lon=lon, lat=lat, accuracy_m=accuracy_m, occurred_at=occurred_at, attachments=attachments,
        subject_type=subject_type, subject_ref=subject_ref, now=now,
        stamp_missing_time=caller.role == auth.SERVICE)
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


class _Raced(Exception):
    pass


def _store_report(caller: Principal, draft: domain.Draft, content_hash: str, now: datetime) -> ReportResult:
    with session_scope() as session:
        replay = _replay(session, caller, draft.report_id, content_hash)
        if replay:
            return replay
        category = store.active_category(session, draft.category_code)
        if category is None:
            raise InvalidArgument(f"unknown category {draft.category_code}; see ListCategories")
        pinned = store.locate_grid(session, draft.lon, draft.lat)
        if pinned is None:
            raise NotFound(f"point ({draft.lon}, {draft.lat}) lies outside every grid")
        grid_code, lineage = pinned
        domain.may_report(caller, lineage)
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
            attachments=[a.__dict__ for a in draft.attachments]))
        if not inserted:
            raise _Raced()
        store.append_history(session, incident_id=incident_id, version=1, action="report",
                             from_status=None, to_status=domain.REPORTED, actor_id=caller.member_id,
                             actor_role=caller.role, note=None, department_code=None)
        view = _view(store.get(session, incident_id))
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
    return ReportResult(_view(row), replayed=True)


# --- lifecycle -----------------------------------------------------------------------------

def transition(caller: Principal, incident_id: str, expected_version: int, req: domain.Request, *,
               actor: tuple[str, str] | None = None) -> IncidentView:
    """Applies one lifecycle action if the incident is still at expected_version.

    People must name the version they saw (0 is refused); gridbus services acting on events
    may pass 0 for "whatever is current". `actor` records who acted when a service relays a
    department's or dispatcher's action."""
    iid = parse_uuid(incident_id, "incident id")
    if expected_version < 0 or (expected_version == 0 and caller.role != auth.SERVICE):
        raise InvalidArgument("expected_version is required: the version you last read")
    with session_scope() as session:
        return _transition_in(session, caller, iid, expected_version, req, actor)


def _transition_in(session: Session, caller: Principal, iid: uuid.UUID, expected_version: int,
                   req: domain.Request, actor: tuple[str, str] | None, row=None) -> IncidentView:
    """`row`: the incident as the caller has just read it in this session, if it has."""
    row = row if row is not None else store.get(session, iid)
    if row is None:
        raise NotFound(f"no incident {iid}")
    current: store.Incident = row[0]
    from_status, from_version = current.status, current.version
    facts = domain.Facts(from_status, tuple(current.lineage), current.reporter_id, current.department_code)
    if expected_version and from_version != expected_version:
        # Scope first: a stranger learns nothing from the version.
        domain.may_read(caller, facts.lineage, facts.department_code)
        raise Aborted(f"incident {iid} changed: it is at version {from_version} "
                      f"({from_status}), not {expected_version}; re-read and retry")
    outcome = domain.plan_transition(caller, facts, req)
    action = domain.ACTIONS[req.action]
    values = {"status": outcome.status, "department_code": outcome.department_code}
    if action.takes == "violation_confirmed":
        values["violation_confirmed"] = req.violation_confirmed
    if action.takes == "duplicate_of":
        target = parse_uuid(req.duplicate_of, "incident id")
        if target == iid:
            raise InvalidArgument("an incident cannot duplicate itself")
        target_row = store.get(session, target)
        if target_row is None:
            raise NotFound(f"no incident {req.duplicate_of} to merge into")
        values["duplicate_of"] = target_row[0].duplicate_of or target
    written = store.apply_change(session, iid, from_version, values)
    if written is None:
        raise Aborted(f"incident {iid} changed while you acted on it; re-read and retry")
    new_version = written.version
    actor_id, actor_role = actor or (caller.member_id, caller.role)
    note = (req.note or "").strip() or None
    store.append_history(session, incident_id=iid, version=new_version, action=req.action,
                         from_status=from_status, to_status=outcome.status, actor_id=actor_id,
                         actor_role=actor_role, note=note, department_code=outcome.department_code)
    # The row as read plus what the update wrote: no second read.
    view = replace(_view(row), version=new_version, updated_at=written.updated_at,
                   **{k: v for k, v in values.items() if k != "duplicate_of"})
    if "duplicate_of" in values:
        view.duplicate_of = str(values["duplicate_of"])
    record_event(session, SCHEMA, action.event_type, f"incidents/{iid}",
                 event_data(view, previous_status=from_status, actor_id=actor_id,
                            actor_role=actor_role, note=note, at=view.updated_at),
                 subject_sequence=new_version)
    return view


# --- queries -------------------------------------------------------------------------------

def get(caller: Principal, incident_id: str) -> tuple[IncidentView, list[HistoryView]]:
    iid = parse_uuid(incident_id, "incident id")
    with session_scope() as session:
        row = store.get(session, iid)
        if row is None or (caller.role == auth.PUBLIC and not domain.publicly_submitted(row[0].reporter_id)):
            raise NotFound(f"no incident {incident_id}")
        if caller.role == auth.PUBLIC:
            return _view(row), []
        domain.may_read(caller, row[0].lineage, row[0].department_code)
        return _view(row), [HistoryView(h.version, h.action, h.from_status, h.to_status, h.actor_id,
                                        h.actor_role, h.note, h.department_code, h.at)
                            for h in store.history(session, iid)]


def list_incidents(caller: Principal, filters: Filters, page_size: int = 0,
                   page_token: str = "") -> tuple[list[IncidentView], str]:
    if page_size < 0 or page_size > MAX_PAGE:
        raise InvalidArgument(f"page_size must be 0..{MAX_PAGE}")
    for s in filters.statuses:
        if s not in domain.STATUSES:
            raise InvalidArgument(f"unknown status {s!r}")
    if filters.category_code:
        domain.check_category_code(filters.category_code)
    if filters.reported_from and filters.reported_to and filters.reported_from >= filters.reported_to:
        raise InvalidArgument("reported_from must be before reported_to")
    if filters.bbox:
        w, s, e, n = filters.bbox
        domain.check_point(w, s, 0)
        domain.check_point(e, n, 0)
        if w >= e or s >= n:
            raise InvalidArgument("bbox must be min_lon < max_lon and min_lat < max_lat")
    if len(filters.ids) > MAX_IDS:
        raise InvalidArgument(f"{len(filters.ids)} incident ids; at most {MAX_IDS}")
    ids = [parse_uuid(i, "incident id") for i in filters.ids]
    after = domain.decode_cursor(page_token)
    limit = page_size or DEFAULT_PAGE
    with session_scope() as session:
        rows = store.list_incidents(
            session, **_visible_to(session, caller, filters.grid_code), grid_code=filters.grid_code,
            statuses=filters.statuses, category_prefix=filters.category_code,
            reported_from=filters.reported_from, reported_to=filters.reported_to, bbox=filters.bbox,
            ids=ids, after_seq=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    token = domain.encode_cursor(rows[-1][0].seq) if more else ""
    return [_view(r) for r in rows], token


def _visible_to(session: Session, caller: Principal, grid_code: str | None) -> dict:
    """The store filters that keep a list to what the caller may see; a unit asked for must
    exist and be in the caller's scope. The public sees Open311 submissions only."""
    lineage = None
    if grid_code:
        lineage = store.unit_lineage(session, grid_code)
        if lineage is None:
            raise NotFound(f"no unit with code {grid_code}")
    domain.may_list(caller, grid_code, lineage)
    return {"scope": None if caller.role in (auth.SERVICE, auth.DEPARTMENT, auth.PUBLIC) else caller.scope,
            "department": caller.member_id if caller.role == auth.DEPARTMENT else None,
            "reporter_prefix": domain.OPEN311_REPORTER_PREFIX if caller.role == auth.PUBLIC else None}


@dataclass
class SummaryRow:
    key: str
    count: int
    open: int


def summarize(caller: Principal, group_by: str, filters: Filters, time_zone: str = "",
              limit: int = 0) -> tuple[list[SummaryRow], int]:
    """Counts of the incidents the caller may see, grouped (domain.SUMMARY_GROUPINGS), and
    their total. Days with no incident and funnel stages nobody reached are rows of 0."""
    zone = domain.check_summary(group_by, filters.reported_from, filters.reported_to, time_zone, limit)
    if filters.category_code:
        domain.check_category_code(filters.category_code)
    with session_scope() as session:
        where = dict(_visible_to(session, caller, filters.grid_code), grid_code=filters.grid_code,
                     statuses=[], category_prefix=filters.category_code,
                     reported_from=filters.reported_from, reported_to=filters.reported_to)
        if group_by == "stage":
            counts = dict.fromkeys(domain.FUNNEL, 0)
            for status, reached, n in store.funnel_facts(session, **where):
                for stage in domain.funnel_stages(status, reached):
                    counts[stage] += n
            return [SummaryRow(k, n, 0) for k, n in counts.items()], counts["reported"]
        rows = [SummaryRow(*r) for r in store.summarize(session, group_by, zone, limit, **where)]
        total = store.count(session, **where) if limit else sum(r.count for r in rows)
    if group_by == "day":
        found = {r.key: r for r in rows}
        rows = [found.get(day, SummaryRow(day, 0, 0))
                for day in domain.days_between(filters.reported_from, filters.reported_to, zone)]
    return rows, total


def check_watch(caller: Principal, grid_code: str) -> None:
    """Watching needs a unit in the caller's scope (departments list their queue instead)."""
    auth.require_role(caller, auth.DISPATCHER, auth.OFFICER, auth.ADMIN, auth.SERVICE)
    if not grid_code:
        raise InvalidArgument("grid_code is required: the subtree to watch")
    with session_scope() as session:
        lineage = store.unit_lineage(session, grid_code)
    if lineage is None:
        raise NotFound(f"no unit with code {grid_code}")
    auth.require_scope(caller, lineage, f"grid {grid_code}")


def list_categories(caller: Principal, include_inactive: bool = False) -> list[store.Category]:
    with session_scope() as session:
        return store.list_categories(session, include_inactive)


def load_categories(caller: Principal, doc) -> tuple[int, int]:
    auth.require_role(caller, auth.ADMIN, auth.SERVICE)
    categories = domain.parse_catalogue(doc)
    with session_scope() as session:
        return store.load_categories(session, categories)


# --- reacting to dispatch ------------------------------------------------------------------

SYSTEM = Principal("incidents", auth.SERVICE, ())

CONSUMER = "incidents.apply_dispatch_event"


def apply_dispatch_event(event: dict) -> str:
    """Applies a dispatch decision to its incident, once per event id. Returns what happened.
    Which decision makes which action is the action table's `from_dispatch` (domain.ACTIONS).

    A decision the incident has moved past (a late or repeated event) is logged and dropped:
    retrying could never make it legal."""
    data = event["data"]
    action = domain.action_for_dispatch_event(event["type"])
    if action is None:
        return "ignored"
    if action.department == domain.SETS and not data.get("department_code"):
        return "manual queue"
    actor = data.get("actor") or {}
    note = data.get("reason") or data.get("note") or data.get("resolution")
    if action.note and not note:
        note = f"by dispatch ({event['type']})"
    with session_scope() as session:
        # The inbox row and the change commit together: a crash in between redoes both.
        if not first_delivery(session, SCHEMA, CONSUMER, event):
            return "duplicate"
        row = None
        try:
            with session.begin_nested():
                iid = parse_uuid(data["incident_id"], "incident id")
                row = store.get(session, iid)
                instead = row and domain.reassignment(action, row[0].status, row[0].department_code,
                                                      data.get("department_code"))
                if instead:
                    action, note = instead, note or "reassigned by a dispatcher"
                req = domain.Request(action=action.name, department_code=data.get("department_code"), note=note,
                                     duplicate_of=data.get("into_incident_id") if action.takes == "duplicate_of"
                                     else None)
                _transition_in(session, SYSTEM, iid, 0, req,
                               (str(actor.get("id") or "dispatch"), str(actor.get("role") or auth.SERVICE)), row)
            return action.name
        except (FailedPrecondition, InvalidArgument, NotFound) as exc:
            if (isinstance(exc, FailedPrecondition) and row is not None
                    and domain.arrived_early(action.name, row[0].status)):
                # Rolls back the inbox row too; the consumer retries it in place, after the
                # decision it overtook (e.g. resolved before acknowledged) has been applied.
                raise Aborted(f"{event['type']} arrived before the incident reached the state it "
                              f"applies to ({row[0].status}); waiting for the earlier decision") from exc
            log.warning("dispatch event %s (%s) not applied to incident %s: %s",
                        event["id"], event["type"], data.get("incident_id"), exc)
            return "not applicable"


def health() -> dict:
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    return {"status": "SERVING"}
