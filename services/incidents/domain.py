"""Incident rules: what a report must hold, the lifecycle, and who may do what.

Plain Python, no I/O.

The lifecycle follows the case workflow of digital urban management (collect, register,
dispatch, handle, feed back, verify, close); docs/service-contracts.md draws it.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared import auth
from shared.auth import Principal
from shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from shared.ids import parse_uuid

REPORTED, DISPATCHED, IN_PROGRESS, RESOLVED = "reported", "dispatched", "in_progress", "resolved"
VERIFIED, CLOSED, REJECTED, REOPENED = "verified", "closed", "rejected", "reopened"
STATUSES = (REPORTED, DISPATCHED, IN_PROGRESS, RESOLVED, VERIFIED, CLOSED, REJECTED, REOPENED)
OPEN_STATUSES = frozenset(STATUSES) - {CLOSED, REJECTED}

# Input limits (documented in the README and the proto).
MAX_TITLE = 120
MAX_DESCRIPTION = 4000
MAX_NOTE = 1000
MAX_ATTACHMENTS = 9
MAX_ATTACHMENT_BYTES = 200 * 1024 * 1024
MAX_URI = 2048
MAX_ACCURACY_M = 5000.0
CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)  # an offline queue older than this is stale
MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/heic", "image/webp", "video/mp4",
                         "video/quicktime", "audio/aac", "audio/mpeg", "audio/amr"})
# gridbus://attachments/<sha256>: a photo in gridbus's own attachment store (services/console/attachments).
URI_SCHEMES = ("https://", "s3://", "oss://", "gridbus://attachments/")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CATEGORY = re.compile(r"[0-9A-Za-z]{2,16}")
_DEPARTMENT = re.compile(r"[0-9A-Za-z_.-]{1,64}")
SUBJECT_TYPES = ("enterprise", "person")


@dataclass(frozen=True)
class Attachment:
    sha256: str
    size_bytes: int
    media_type: str
    uri: str


@dataclass(frozen=True)
class Subject:
    type: str  # enterprise: ref is its unified social credit code; person: the registry's id
    ref: str


@dataclass(frozen=True)
class Draft:
    """A checked report, before it is pinned to a grid."""
    report_id: str
    category_code: str
    title: str
    description: str
    lon: float
    lat: float
    accuracy_m: float
    occurred_at: datetime
    attachments: tuple[Attachment, ...] = ()
    subject: Subject | None = None
    time_given: bool = True  # False: the gateway stamped occurred_at; a retry gets another stamp

    def content_hash(self) -> str:
        """Same report id with the same content is a retry; with other content, a conflict."""
        body = {
            "category": self.category_code, "title": self.title, "description": self.description,
            "lon": round(self.lon, 7), "lat": round(self.lat, 7), "accuracy": round(self.accuracy_m, 1),
            "occurred_at": self.occurred_at.astimezone(timezone.utc).isoformat() if self.time_given else None,
            "attachments": [a.__dict__ for a in self.attachments],
            "subject": self.subject.__dict__ if self.subject else None,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def check_point(lon: float, lat: float, accuracy_m: float) -> None:
    for name, v in (("lon", lon), ("lat", lat), ("accuracy_m", accuracy_m)):
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InvalidArgument(f"{name} must be a finite number, got {v!r}")
    if not -180.0 <= lon <= 180.0:
        raise InvalidArgument(f"lon {lon} is outside -180..180")
    if not -90.0 <= lat <= 90.0:
        raise InvalidArgument(f"lat {lat} is outside -90..90")
    if lon == 0.0 and lat == 0.0:
        raise InvalidArgument("location 0,0 is a phone without a fix, not a place")
    if not 0.0 <= accuracy_m <= MAX_ACCURACY_M:
        raise InvalidArgument(f"accuracy_m {accuracy_m} must be between 0 and {MAX_ACCURACY_M:g} metres")


def check_text(value: str, what: str, limit: int, *, required: bool) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidArgument(f"{what} is required")
    if len(value) > limit:
        raise InvalidArgument(f"{what} has {len(value)} characters; at most {limit}")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise InvalidArgument(f"{what} holds control characters")
    return value


def check_category_code(code: str) -> str:
    if not _CATEGORY.fullmatch(code or ""):
        raise InvalidArgument(f"category code {code!r} must be 2-16 letters or digits")
    return code


def check_department_code(code: str) -> str:
    if not _DEPARTMENT.fullmatch(code or ""):
        raise InvalidArgument(f"department code {code!r} is not valid")
    return code


def check_attachments(items) -> tuple[Attachment, ...]:
    items = list(items)
    if len(items) > MAX_ATTACHMENTS:
        raise InvalidArgument(f"{len(items)} attachments; at most {MAX_ATTACHMENTS}")
    out = []
    for i, a in enumerate(items):
        where = f"attachment {i}"
        if not _SHA256.fullmatch(a.sha256 or ""):
            raise InvalidArgument(f"{where}: sha256 must be 64 lowercase hex digits")
        if not 0 < a.size_bytes <= MAX_ATTACHMENT_BYTES:
            raise InvalidArgument(f"{where}: size_bytes must be 1..{MAX_ATTACHMENT_BYTES}")
        if a.media_type not in MEDIA_TYPES:
            raise InvalidArgument(f"{where}: media type {a.media_type!r} is not one of {sorted(MEDIA_TYPES)}")
        if not a.uri.startswith(URI_SCHEMES) or len(a.uri) > MAX_URI:
            raise InvalidArgument(f"{where}: uri must start with {', '.join(URI_SCHEMES)} and be "
                                  f"at most {MAX_URI} characters (files are uploaded elsewhere, not sent here)")
        out.append(Attachment(a.sha256, a.size_bytes, a.media_type, a.uri))
    return tuple(out)


def check_subject(type_: str, ref: str) -> Subject | None:
    if not type_ and not ref:
        return None
    if type_ not in SUBJECT_TYPES:
        raise InvalidArgument(f"subject type {type_!r} must be one of {', '.join(SUBJECT_TYPES)}")
    if type_ == "enterprise":
        if not re.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{18}", ref or ""):
            raise InvalidArgument("an enterprise subject is named by its 18-character unified social credit code")
    else:
        # A person is named by the credit registry's id, never by an identity number.
        parse_uuid(ref, "person subject id")
    return Subject(type_, ref)


def check_occurred_at(when: datetime, now: datetime) -> datetime:
    if when.tzinfo is None:
        raise InvalidArgument("occurred_at must carry a time zone")
    if when > now + CLOCK_SKEW:
        raise InvalidArgument(f"occurred_at {when.isoformat()} is in the future (clock skew allowed: "
                              f"{int(CLOCK_SKEW.total_seconds())} s)")
    if when < now - MAX_AGE:
        raise InvalidArgument(f"occurred_at {when.isoformat()} is older than {MAX_AGE.days} days")
    return when


def make_draft(*, report_id: str, category_code: str, title: str, description: str, lon: float,
               lat: float, accuracy_m: float, occurred_at: datetime | None, attachments=(),
               subject_type: str = "", subject_ref: str = "", now: datetime,
               stamp_missing_time: bool = False) -> Draft:
    """stamp_missing_time: a gateway whose clients send no time (Open311) reports "now"."""
    time_given = occurred_at is not None
    if not time_given:
        if not stamp_missing_time:
            raise InvalidArgument("occurred_at is required")
        occurred_at = now
    check_point(lon, lat, accuracy_m)
    return Draft(
        report_id=str(parse_uuid(report_id, "report_id")),
        category_code=check_category_code(category_code),
        title=check_text(title, "title", MAX_TITLE, required=True),
        description=check_text(description, "description", MAX_DESCRIPTION, required=False),
        lon=float(lon), lat=float(lat), accuracy_m=float(accuracy_m),
        occurred_at=check_occurred_at(occurred_at, now),
        attachments=check_attachments(attachments),
        subject=check_subject(subject_type, subject_ref),
        time_given=time_given,
    )


def may_report(p: Principal, lineage: list[str]) -> None:
    # Officers report in their own grids; the Open311 gateway reports for citizens as a service.
    auth.require_role(p, auth.OFFICER, auth.SERVICE)
    auth.require_scope(p, lineage, "this location")


# --- lifecycle -----------------------------------------------------------------------------

# What an action does with the incident's department.
KEEPS = "keeps"      # stays as it is
SETS = "sets"        # takes department_code
CHANGES = "changes"  # takes department_code, which must be another department than now
CLEARS = "clears"    # back to none: the incident is with the reporting officer again

# Request fields only some actions take, and what the action must then name (None: a flag, optional).
EXTRA_FIELDS = {"duplicate_of": "the incident it duplicates", "violation_confirmed": None}


@dataclass(frozen=True)
class Action:
    """One lifecycle action: the only place that says what it does. plan_transition, the gRPC enum,
    the command line, the event it emits, how incidents applies dispatch's decisions and the
    roles table in docs/service-contracts.md are all read from, or tested against, this row."""
    name: str
    sources: frozenset[str]          # the statuses it applies to
    target: str | None               # the status after it; None: the status does not change
    roles: frozenset[str]            # who may take it (and always within their scope)
    event: str                       # it emits incidents.incident.<event>
    note: bool = False               # needs a note saying why
    department: str = KEEPS          # KEEPS, SETS, CHANGES or CLEARS the department
    reporter_only: bool = False      # only the officer who reported the incident
    takes: str | None = None         # the one field of EXTRA_FIELDS it takes
    from_dispatch: tuple[str, ...] = ()  # dispatch's events that make incidents take it

    @property
    def event_type(self) -> str:
        return f"incidents.incident.{self.event}"


def _action(name, sources, target, roles, event, **kw) -> Action:
    return Action(name, frozenset(sources), target, frozenset(roles), event, **kw)


_D, _O, _S, _DEP = auth.DISPATCHER, auth.OFFICER, auth.SERVICE, auth.DEPARTMENT
ACTIONS: dict[str, Action] = {a.name: a for a in (
    _action("dispatch", {REPORTED, REOPENED}, DISPATCHED, {_D, _S}, "dispatched", department=SETS,
            from_dispatch=("dispatch.task.created", "dispatch.task.assigned")),
    _action("reroute", {DISPATCHED, IN_PROGRESS}, DISPATCHED, {_D, _S}, "rerouted", note=True, department=CHANGES,
            from_dispatch=("dispatch.task.rerouted",)),
    _action("accept", {DISPATCHED, REOPENED}, IN_PROGRESS, {_DEP, _S}, "accepted",
            from_dispatch=("dispatch.task.acknowledged",)),
    _action("resolve", {IN_PROGRESS}, RESOLVED, {_DEP, _S}, "resolved", from_dispatch=("dispatch.task.resolved",)),
    _action("verify", {RESOLVED}, VERIFIED, {_O, _S}, "verified"),
    _action("reopen", {RESOLVED, VERIFIED}, REOPENED, {_O, _D, _S}, "reopened", note=True),
    _action("reject", {REPORTED, DISPATCHED, REOPENED}, REJECTED, {_D, _S}, "rejected", note=True, department=CLEARS,
            from_dispatch=("dispatch.task.rejected",)),
    _action("resubmit", {REJECTED}, REPORTED, {_O}, "resubmitted", department=CLEARS, reporter_only=True),
    _action("close", {VERIFIED, REJECTED}, CLOSED, {_D, _S}, "closed", takes="violation_confirmed"),
    # A duplicate merged into another incident ends here; its link says where to look.
    _action("merge", OPEN_STATUSES, CLOSED, {_D, _S}, "merged", takes="duplicate_of",
            from_dispatch=("dispatch.task.merged",)),
)}
REPORTED_EVENT = "incidents.incident.reported"  # the report itself, which no action makes
EVENT_TYPES = (REPORTED_EVENT, *(a.event_type for a in ACTIONS.values()))

# How far along the dispatched part of the lifecycle a status is (reopened starts over).
_PROGRESS = {REPORTED: 0, REOPENED: 0, DISPATCHED: 1, IN_PROGRESS: 2, RESOLVED: 3, VERIFIED: 4,
             CLOSED: 5, REJECTED: 5}


def arrived_early(action: str, status: str) -> bool:
    """True when `action` does not apply to `status` because the incident is still behind the
    states it applies to: a decision that overtook an earlier one (consumers run concurrently,
    on several replicas), which is worth waiting for. False when the incident has moved past:
    a late or repeated decision."""
    a = ACTIONS[action]
    if status in a.sources:
        return False
    forward = [_PROGRESS[s] for s in a.sources if s != REOPENED]
    return bool(forward) and _PROGRESS[status] < min(forward)


def action_for_dispatch_event(event_type: str) -> Action | None:
    """The action a dispatch decision makes incidents take; None for events that change nothing."""
    return next((a for a in ACTIONS.values() if event_type in a.from_dispatch), None)


def reassignment(action: Action, status: str, department: str | None, wanted: str | None) -> Action | None:
    """A decision that sets a department, reaching an incident that another department already
    has (a dispatcher reassigned the task), is the action that changes the department instead."""
    if action.department != SETS or status in action.sources or wanted == department:
        return None
    return next((a for a in ACTIONS.values() if a.department == CHANGES and status in a.sources), None)


@dataclass(frozen=True)
class Facts:
    """What the rules need to know about an incident."""
    status: str
    lineage: tuple[str, ...]
    reporter_id: str
    department_code: str | None


@dataclass(frozen=True)
class Request:
    action: str
    department_code: str | None = None
    note: str | None = None
    violation_confirmed: bool = False
    duplicate_of: str | None = None


@dataclass
class Outcome:
    status: str
    department_code: str | None


def plan_transition(p: Principal, facts: Facts, req: Request) -> Outcome:
    """Checks the caller and the state machine against the action's row; returns the incident's
    next state.

    Order: unknown action (INVALID_ARGUMENT), the caller's role and scope (PERMISSION_DENIED:
    a caller learns nothing about incidents outside their grids), then the current state
    (FAILED_PRECONDITION, naming it), then the request's fields (INVALID_ARGUMENT)."""
    action = ACTIONS.get(req.action)
    if action is None:
        raise InvalidArgument(f"unknown action {req.action!r}; one of {', '.join(ACTIONS)}")
    if p.role not in action.roles:
        raise PermissionDenied(f"role {p.role} may not {action.name} an incident")
    if p.role == auth.DEPARTMENT:
        if facts.department_code != p.member_id:
            raise PermissionDenied(f"this incident is not dispatched to department {p.member_id}")
    else:
        auth.require_scope(p, facts.lineage, "this incident")
    if action.reporter_only and facts.reporter_id != p.member_id:
        raise PermissionDenied(f"only the officer who reported it may {action.name} an incident")
    if facts.status not in action.sources:
        raise FailedPrecondition(
            f"cannot {action.name} an incident that is {facts.status}; "
            f"{action.name} applies to {', '.join(sorted(action.sources))}")
    if req.note is not None:
        check_text(req.note, "note", MAX_NOTE, required=False)
    if action.note and not (req.note or "").strip():
        raise InvalidArgument(f"{action.name} needs a note saying why")
    department = facts.department_code
    if action.department in (SETS, CHANGES):
        department = check_department_code(req.department_code or "")
        if action.department == CHANGES and department == facts.department_code:
            raise FailedPrecondition(f"the incident is already with department {department}")
    for name, names in EXTRA_FIELDS.items():
        given = getattr(req, name)
        if action.takes == name:
            if names and not given:
                raise InvalidArgument(f"{action.name} needs {names}")
        elif given:
            takers = ", ".join(a.name for a in ACTIONS.values() if a.takes == name)
            raise InvalidArgument(f"{name} only goes with {takers}")
    if action.department == CLEARS:
        department = None
    return Outcome(status=action.target or facts.status, department_code=department)


# Requests submitted through the Open311 gateway are reported by "open311:<client>". They alone
# are public: anyone may read them (as auth.PUBLIC, through the gateway), while officers'
# reports are internal. The public never reads the history (staff's notes).
OPEN311_REPORTER_PREFIX = "open311:"


def publicly_submitted(reporter_id: str) -> bool:
    return reporter_id.startswith(OPEN311_REPORTER_PREFIX)


def may_read(p: Principal, lineage: list[str] | tuple[str, ...], department_code: str | None) -> None:
    if p.role == auth.DEPARTMENT:
        if department_code != p.member_id:
            raise PermissionDenied("this incident is not dispatched to your department")
        return
    auth.require_scope(p, lineage, "this incident")


def may_list(p: Principal, grid_code: str | None, lineage: list[str] | None) -> None:
    """Listing a subtree needs the subtree in scope; listing without one lists your scope."""
    if grid_code and p.role != auth.DEPARTMENT:
        auth.require_scope(p, lineage or [], f"grid {grid_code}")


# --- cursors -------------------------------------------------------------------------------

def encode_cursor(seq: int) -> str:
    return f"s{seq:x}"


def decode_cursor(token: str) -> int | None:
    if not token:
        return None
    if not re.fullmatch(r"s[0-9a-f]{1,16}", token):
        raise InvalidArgument("page_token is not one this service gave out")
    return int(token[1:], 16)


# --- category catalogue --------------------------------------------------------------------

@dataclass(frozen=True)
class Category:
    code: str
    name: str
    parent_code: str | None
    priority: int
    deadline_hours: int


def parse_catalogue(doc) -> list[Category]:
    """The operator's category file; parents first. InvalidArgument names the bad entry."""
    items = doc.get("categories") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise InvalidArgument("the catalogue must have a non-empty 'categories' list")
    seen: dict[str, Category] = {}
    for i, item in enumerate(items):
        where = f"category {i}"
        if not isinstance(item, dict):
            raise InvalidArgument(f"{where} is not a mapping")
        code = check_category_code(str(item.get("code", "")))
        if len(code) % 2:
            raise InvalidArgument(f"{where}: code {code!r} must have an even number of characters")
        if code in seen:
            raise InvalidArgument(f"{where}: code {code} appears twice")
        parent = code[:-2] or None
        if parent is not None and parent not in seen:
            raise InvalidArgument(f"{where}: parent {parent} of {code} must come before it")
        name = check_text(str(item.get("name", "")), f"{where} name", 200, required=True)
        priority, hours = item.get("priority"), item.get("deadline_hours")
        if not isinstance(priority, int) or not 1 <= priority <= 4:
            raise InvalidArgument(f"{where}: priority must be 1 (urgent) to 4 (routine)")
        if not isinstance(hours, int) or not 0 < hours <= 24 * 90:
            raise InvalidArgument(f"{where}: deadline_hours must be 1..2160")
        seen[code] = Category(code, name, parent, priority, hours)
    return list(seen.values())


# --- figures -------------------------------------------------------------------------------

# What Summarize may group by; a unit level is the incident's lineage at that depth.
SUMMARY_UNIT_DEPTH = {"district": 1, "street": 2, "community": 3, "grid": 4}
SUMMARY_GROUPINGS = ("status", "category", *SUMMARY_UNIT_DEPTH, "day", "stage")
MAX_SUMMARY_DAYS = 366
# The case funnel of digital urban management (上报 立案 派遣 处置 结案).
FUNNEL = ("reported", "filed", "dispatched", "handled", "closed")
# The statuses whose having been reached decides a funnel stage (from the audit trail).
FUNNEL_MILESTONES = (DISPATCHED, RESOLVED, VERIFIED)


def funnel_stages(status: str, reached: set[str]) -> tuple[str, ...]:
    """The funnel stages an incident counts in, from its status and the milestones it reached.

    Every report is reported. It is filed (a case) unless the dispatcher rejected it as none or
    it was closed without ever being verified (a rejected report closed, a merged duplicate).
    A filed case is dispatched, handled and closed once it reached dispatched, resolved and
    closed, so every stage is a subset of the one before."""
    filed = status != REJECTED and not (status == CLOSED and VERIFIED not in reached)
    if not filed:
        return FUNNEL[:1]
    stages = FUNNEL[:2]
    if DISPATCHED in reached:
        stages += ("dispatched",)
        if RESOLVED in reached:
            stages += ("handled",)
            if status == CLOSED:
                stages += ("closed",)
    return stages


def check_summary(group_by: str, reported_from: datetime | None, reported_to: datetime | None,
                  time_zone: str, limit: int) -> str:
    """Checks a Summarize request; returns the time zone to count days in."""
    if group_by not in SUMMARY_GROUPINGS:
        raise InvalidArgument(f"group_by must be one of {', '.join(SUMMARY_GROUPINGS)}")
    if limit < 0:
        raise InvalidArgument("limit must be 0 (all) or more")
    if reported_from and reported_to and reported_from >= reported_to:
        raise InvalidArgument("reported_from must be before reported_to")
    zone = time_zone or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"time_zone {zone!r} is not an IANA time zone (e.g. Asia/Shanghai)")
    if group_by == "day":
        if not (reported_from and reported_to):
            raise InvalidArgument("grouping by day needs reported_from and reported_to")
        if reported_to - reported_from > timedelta(days=MAX_SUMMARY_DAYS):
            raise InvalidArgument(f"grouping by day covers at most {MAX_SUMMARY_DAYS} days")
    return zone


def days_between(reported_from: datetime, reported_to: datetime, zone: str) -> list[str]:
    """The calendar days (YYYY-MM-DD, in the zone) that [from, to) touches."""
    tz = ZoneInfo(zone)
    day, last = reported_from.astimezone(tz).date(), (reported_to - timedelta(microseconds=1)).astimezone(tz).date()
    days = []
    while day <= last:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days
