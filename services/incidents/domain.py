"""Incident rules: the lifecycle, who may do what, the category catalogue and the figures.

Plain Python, no I/O.

The lifecycle follows the case workflow of digital urban management (collect, register,
dispatch, handle, feed back, verify, close); docs/service-contracts.md draws it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.incidents.report_rules import check_category_code, check_department_code, check_text
from shared import auth
from shared.auth import Principal
from shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied

REPORTED, DISPATCHED, IN_PROGRESS, RESOLVED = "reported", "dispatched", "in_progress", "resolved"
VERIFIED, CLOSED, REJECTED, REOPENED = "verified", "closed", "rejected", "reopened"
STATUSES = (REPORTED, DISPATCHED, IN_PROGRESS, RESOLVED, VERIFIED, CLOSED, REJECTED, REOPENED)
OPEN_STATUSES = frozenset(STATUSES) - {CLOSED, REJECTED}
MAX_NOTE = 1000

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
