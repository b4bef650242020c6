"""Incident rules: the lifecycle, who may do what, the category catalogue and the figures.

Plain Python, no I/O.

The lifecycle follows the case workflow of digital urban management (collect, register,
dispatch, handle, feed back, verify, close); docs/service-contracts.md draws it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from services.incidents.report_rules import check_category_code, check_department_code, check_text
from services.incidents import criteria as criteria_rules
from services.incidents.figures import (FUNNEL, FUNNEL_MILESTONES, MAX_SUMMARY_DAYS,  # noqa: F401 (re-exported)
                                       SUMMARY_GROUPINGS, SUMMARY_UNIT_DEPTH, check_summary, days_between,
                                       funnel_stages)
from services.incidents import access
from shared import access as shared_access, auth
from shared.auth import Principal
from shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied

REPORTED, DISPATCHED, IN_PROGRESS, RESOLVED = "reported", "dispatched", "in_progress", "resolved"
VERIFIED, CLOSED, REJECTED, REOPENED = "verified", "closed", "rejected", "reopened"
VOIDED, PARKED = "voided", "parked"  # filed in error, ended without a result; out of the queues until reviewed
STATUSES = (REPORTED, DISPATCHED, IN_PROGRESS, RESOLVED, VERIFIED, CLOSED, REJECTED, REOPENED, VOIDED, PARKED)
FINAL_STATUSES = frozenset({CLOSED, REJECTED, VOIDED})
OPEN_STATUSES = frozenset(STATUSES) - FINAL_STATUSES
# The statuses a case is worked in: open and not parked.
ACTIVE_STATUSES = OPEN_STATUSES - {PARKED}
MAX_PARK_DAYS = 366
MAX_NOTE = 1000

# --- lifecycle -----------------------------------------------------------------------------

# What an action does with the incident's department.
KEEPS = "keeps"      # stays as it is
SETS = "sets"        # takes department_code
CHANGES = "changes"  # takes department_code, which must be another department than now
CLEARS = "clears"    # back to none: the incident is with the reporting officer again
ADDS, REMOVES = "adds", "removes"  # an assisting department (协办) joins the case, or is done or released

# Request fields only some actions take, and what the action must then name (None: a flag, optional).
EXTRA_FIELDS = {"duplicate_of": "the incident it duplicates", "violation_confirmed": None,
                "review_at": "the review date, when the parked case comes back"}


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
    opens: str | None = None         # a side procedure's request: it waits for a decision
    decides: str | None = None       # a decision (approve or refuse) of the procedure's waiting request
    supervises: bool = False         # marks the case supervised and raises it to priority 1
    assist: str | None = None        # ADDS or REMOVES department_code among the assisting departments
    waits_for_assists: bool = False  # refused while assisting departments are still at work

    @property
    def event_type(self) -> str:
        return f"incidents.incident.{self.event}"


def _action(name, sources, target, roles, event, **kw) -> Action:
    return Action(name, frozenset(sources), target, frozenset(roles), event, **kw)


@dataclass(frozen=True)
class Procedure:
    """A side procedure of the case (GB/T 30428's approvals): one role asks, with a reason;
    another decides, approving or refusing with a reason. Its three rows of ACTIONS are
    request_<name>, approve_<name> and refuse_<name>. The task-level procedures (extension,
    return) are dispatch's (services/dispatch/domain.py TASK_PROCEDURES)."""
    name: str
    sources: frozenset[str]          # the statuses it may be asked for in (and decided in)
    approved: str | None             # the status approval leads to; None: unchanged
    requesters: frozenset[str]
    deciders: frozenset[str]
    events: tuple[str, str, str]     # requested, approved, refused
    pauses: bool                     # the deadline clock stops while the request waits
    takes: str | None = None         # the extra field the request needs
    supervises: bool = False

    def actions(self) -> list[Action]:
        requested, approved, refused = self.events
        return [Action(f"request_{self.name}", self.sources, None, self.requesters, requested, note=True,
                       takes=self.takes, opens=self.name),
                Action(f"approve_{self.name}", self.sources, self.approved, self.deciders, approved, note=True,
                       decides=self.name, supervises=self.supervises),
                Action(f"refuse_{self.name}", self.sources, None, self.deciders, refused, note=True,
                       decides=self.name)]


_D, _O, _S, _DEP, _A = auth.DISPATCHER, auth.OFFICER, auth.SERVICE, auth.DEPARTMENT, auth.ADMIN
# The command centre's management (admin) decides: a dispatcher, even a shift leader with the
# whole city in scope, only asks. The clock does not wait on supervision,
# which urges the department on rather than excusing it.
PROCEDURES: dict[str, Procedure] = {p.name: p for p in (
    Procedure("void", ACTIVE_STATUSES, VOIDED, frozenset({_O, _D}), frozenset({_A}),
              ("void_requested", "voided", "void_refused"), pauses=True),
    Procedure("park", frozenset({IN_PROGRESS}), PARKED, frozenset({_DEP, _D}), frozenset({_A}),
              ("park_requested", "parked", "park_refused"), pauses=True, takes="review_at"),
    Procedure("supervise", frozenset({DISPATCHED, IN_PROGRESS, REOPENED}), None, frozenset({_D}), frozenset({_A}),
              ("supervision_requested", "supervised", "supervision_refused"), pauses=False, supervises=True),
)}


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
    _action("close", {VERIFIED, REJECTED}, CLOSED, {_D, _S}, "closed", takes="violation_confirmed",
            waits_for_assists=True),
    # A duplicate merged into another incident ends here; its link says where to look.
    _action("merge", OPEN_STATUSES, CLOSED, {_D, _S}, "merged", takes="duplicate_of",
            from_dispatch=("dispatch.task.merged",)),
    # A department's return (回退) that a dispatcher approved in dispatch: back for rerouting.
    _action("return", {DISPATCHED, IN_PROGRESS}, REPORTED, {_S}, "returned", note=True, department=CLEARS,
            from_dispatch=("dispatch.task.returned",)),
    *(a for p in PROCEDURES.values() for a in p.actions()),
    # Assisting departments (协办) with their own tasks in dispatch: the case closes without them.
    _action("add_assist", {DISPATCHED, IN_PROGRESS, REOPENED}, None, {_S}, "assist_added", assist=ADDS,
            from_dispatch=("dispatch.task.assist_assigned",)),
    _action("end_assist", frozenset(STATUSES), None, {_S}, "assist_ended", assist=REMOVES,
            from_dispatch=("dispatch.task.assist_done", "dispatch.task.assist_released")),
    # A parked case comes back at its review date (dispatch keeps the timer), or earlier by hand.
    _action("unpark", {PARKED}, IN_PROGRESS, {_A, _D, _S}, "unparked", note=True,
            from_dispatch=("dispatch.task.review_due",)),
)}
REPORTED_EVENT = "incidents.incident.reported"  # the report itself, which no action makes
EVENT_TYPES = (REPORTED_EVENT, *(a.event_type for a in ACTIONS.values()))

# How far along the dispatched part of the lifecycle a status is (reopened starts over).
_PROGRESS = {REPORTED: 0, REOPENED: 0, DISPATCHED: 1, IN_PROGRESS: 2, PARKED: 2, RESOLVED: 3, VERIFIED: 4,
             CLOSED: 5, REJECTED: 5, VOIDED: 5}


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
    pending: str | None = None       # the procedure whose request waits for its decision
    pending_by: str | None = None    # who asked
    supervised: bool = False
    assisting: tuple[str, ...] = ()  # departments assisting (协办) with their tasks still open


@dataclass(frozen=True)
class Request:
    action: str
    department_code: str | None = None
    note: str | None = None
    violation_confirmed: bool = False
    duplicate_of: str | None = None
    review_at: datetime | None = None


@dataclass
class Outcome:
    status: str
    department_code: str | None
    pending: str | None = None
    pending_by: str | None = None
    assisting: tuple[str, ...] = ()


def clock_paused(status: str, pending: str | None) -> bool:
    """The case's deadline clock stands still while it is parked and while a request of a
    procedure that pauses it waits for its decision."""
    return status == PARKED or bool(pending and PROCEDURES[pending].pauses)


def check_review_at(review_at: datetime, now: datetime) -> None:
    if review_at.tzinfo is None:
        raise InvalidArgument("review_at must carry a time zone")
    if review_at <= now:
        raise InvalidArgument("review_at must be in the future")
    if review_at - now > timedelta(days=MAX_PARK_DAYS):
        raise InvalidArgument(f"review_at: a case is parked for at most {MAX_PARK_DAYS} days")


def _plan_procedure(p: Principal, facts: Facts, action: Action) -> tuple[str | None, str | None]:
    """The waiting request after the action: (procedure, who asked)."""
    if action.opens:
        if facts.pending:
            raise FailedPrecondition(f"a {facts.pending} request is waiting for its decision; "
                                     "it is decided before another is asked")
        if action.opens == "supervise" and facts.supervised:
            raise FailedPrecondition("the case is supervised already")
        return action.opens, p.member_id
    if action.decides:
        if facts.pending != action.decides:
            raise FailedPrecondition(f"no {action.decides} request is waiting for a decision")
        if facts.pending_by == p.member_id:
            raise PermissionDenied(f"the member who asked for {action.decides} may not decide it")
        return None, None
    return facts.pending, facts.pending_by


def plan_transition(p: Principal, facts: Facts, req: Request, now: datetime | None = None) -> Outcome:
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
    if action.waits_for_assists and facts.assisting:
        raise FailedPrecondition(f"assisting departments {', '.join(facts.assisting)} are still at work; the case "
                                 "closes when their tasks are done or a dispatcher releases them")
    assisting = facts.assisting
    if action.assist:
        helper = check_department_code(req.department_code or "")
        assisting = tuple(sorted({*assisting, helper} if action.assist == ADDS else set(assisting) - {helper}))
    department = facts.department_code
    if action.department in (SETS, CHANGES):
        department = check_department_code(req.department_code or "")
        if action.department == CHANGES and department == facts.department_code:
            raise FailedPrecondition(f"the incident is already with department {department}")
    for name, names in EXTRA_FIELDS.items():
        given = getattr(req, name)
        if action.takes == name:
            if names and not given:
                raise InvalidArgument(f"{action.name} needs {name}: {names}")
        elif given:
            takers = ", ".join(a.name for a in ACTIONS.values() if a.takes == name)
            raise InvalidArgument(f"{name} only goes with {takers}")
    if action.takes == "review_at":
        check_review_at(req.review_at, now or datetime.now(timezone.utc))
    if action.department == CLEARS:
        department = None
    pending, pending_by = _plan_procedure(p, facts, action)
    status = action.target or facts.status
    if pending and status not in PROCEDURES[pending].sources:
        pending = pending_by = None  # the case moved on (closed, merged, ...): the request lapses
    return Outcome(status=status, department_code=department, pending=pending, pending_by=pending_by,
                   assisting=assisting)


# Requests submitted through the Open311 gateway are reported by "open311:<client>". They alone
# are public: anyone may read them (as auth.PUBLIC, through the gateway), while officers'
# reports are internal. The public never reads the history (staff's notes).
OPEN311_REPORTER_PREFIX = "open311:"


def publicly_submitted(reporter_id: str) -> bool:
    return reporter_id.startswith(OPEN311_REPORTER_PREFIX)


def may_read(p: Principal, lineage: list[str] | tuple[str, ...], department_code: str | None) -> None:
    shared_access.require(access.READ, p, units_=list(lineage[-1:]) or None, owner=department_code,
                          what="this incident")


def may_list(p: Principal, grid_code: str | None, lineage: list[str] | None) -> None:
    """Listing a subtree needs the subtree in scope; listing without one lists your scope (a
    department: its own cases; the public: what was submitted through Open311)."""
    if p.role == auth.PUBLIC:
        return
    if grid_code and shared_access.scope_of(access.READ, p) != shared_access.OWN_RECORD:
        shared_access.require(access.READ, p, units_=[grid_code], what=f"grid {grid_code}")


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
    criteria: criteria_rules.Criteria = criteria_rules.Criteria()  # filing, closing, verification


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
        seen[code] = Category(code, name, parent, priority, hours, criteria_rules.parse(item, where))
    return list(seen.values())
