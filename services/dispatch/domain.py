"""Dispatch rules: routing precedence, the task lifecycle, deadlines, escalation and the
evaluation arithmetic. Plain Python, no I/O.

Routing: a rule matches an incident when the incident's category is in the rule's category
subtree (a child code starts with its parent's code; empty = any) and its grid is in the
rule's grid subtree (empty = anywhere). The most specific matching rule wins: the longest
category code first, then the deepest grid unit, then the higher `priority` (an operator's
explicit override). Two rules with the same category, grid and priority would tie for every
incident they match, so writing the second one is refused."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.dispatch.calendar import WorkCalendar
from services.dispatch.time_limits import TimeLimit
from services.dispatch import access
from shared import access as shared_access, auth, units
from shared.access import Rule as Rule_
from shared.auth import Principal
from shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied

QUEUED, ASSIGNED, ACKNOWLEDGED, RESOLVED = "queued", "assigned", "acknowledged", "resolved"
CLOSED, REJECTED, MERGED = "closed", "rejected", "merged"
PARKED, VOIDED = "parked", "voided"  # its incident is parked (out of the queues) or voided (filed in error)
RELEASED = "released"  # an assisting task a dispatcher let go (not needed, or the case ended)
STATUSES = (QUEUED, ASSIGNED, ACKNOWLEDGED, RESOLVED, CLOSED, REJECTED, MERGED, PARKED, VOIDED, RELEASED)
OPEN = frozenset({QUEUED, ASSIGNED, ACKNOWLEDGED})
FINAL = frozenset({CLOSED, REJECTED, MERGED, VOIDED})  # the case is over: its task, and assisting ones, too

ASSIGN, ACK, RESOLVE = "assign", "acknowledge", "resolve"  # deadline kinds
DEADLINE_KINDS = (ASSIGN, ACK, RESOLVE)
REVIEW = "review"  # not a deadline: a parked case's review date, when it comes back
# What an assisting department's actions emit instead of the lead's (incidents moves the case on
# the lead's alone): only the lead department reports the case's result (主办 reports, 协办 helps).
ASSIST_EVENTS = {"acknowledge": "assist_acknowledged", "resolve": "assist_done"}
LEVELS = ("grid", "community", "street", "district", "city")  # escalation climbs this list
_CODE = re.compile(r"[0-9A-Za-z_.-]{1,64}")


@dataclass(frozen=True)
class Rule:
    id: int
    category_prefix: str
    grid_code: str
    department_code: str
    priority: int
    ack_minutes: int
    resolve_minutes: int
    working_time: bool

    def matches(self, category: str, lineage: list[str]) -> bool:
        return category.startswith(self.category_prefix) and (not self.grid_code or self.grid_code in lineage)

    @property
    def precedence(self) -> tuple[int, int, int]:
        return (len(self.category_prefix), units.depth(self.grid_code), self.priority)


def check_code(value: str, what: str) -> str:
    if not _CODE.fullmatch(value or ""):
        raise InvalidArgument(f"{what} {value!r}: 1-64 letters, digits, '_', '.', '-'")
    return value


def check_unit(code: str, what: str) -> str:
    try:
        units.level_of(code)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{what}: {exc.message}") from None
    return code


def check_rule(category_prefix: str, grid_code: str, ack_minutes: int, resolve_minutes: int, priority: int) -> None:
    if category_prefix and not re.fullmatch(r"[0-9A-Za-z]{2,16}", category_prefix):
        raise InvalidArgument(f"category {category_prefix!r} is not a category code")
    if grid_code:
        check_unit(grid_code, "grid")
    if not 0 < ack_minutes <= resolve_minutes:
        raise InvalidArgument("deadlines: 0 < ack_minutes <= resolve_minutes")
    if resolve_minutes > 90 * 24 * 60:
        raise InvalidArgument("resolve_minutes: at most 90 days")
    if not -1000 <= priority <= 1000:
        raise InvalidArgument("priority: -1000..1000")


def tie_with(candidate: Rule, existing: list[Rule]) -> Rule | None:
    """The active rule the candidate would tie with, if any."""
    for r in existing:
        if r.id != candidate.id and (r.category_prefix, r.grid_code, r.priority) == \
                (candidate.category_prefix, candidate.grid_code, candidate.priority):
            return r
    return None


def route(rules: list[Rule], category: str, lineage: list[str], serves) -> Rule | None:
    """The winning rule, or None for the manual queue. `serves(department, lineage)` says
    whether a department works in that place; a rule whose department does not is skipped."""
    matching = [r for r in rules if r.matches(category, lineage) and serves(r.department_code, lineage)]
    return max(matching, key=lambda r: r.precedence, default=None)


# --- deadlines -----------------------------------------------------------------------------

# How a task reached its department.
ROUTED = "routed"      # a rule chose it (a new report, a resubmission)
REOPENED = "reopened"  # its incident came back for rework
BY_HAND = "by hand"    # a dispatcher chose it: assigned from the manual queue, or dispatched in incidents
REROUTED = "rerouted"  # a dispatcher sent it on to another department
DEFAULT_ACK_MINUTES, DEFAULT_RESOLVE_MINUTES = 60, 24 * 60


def due_dates(rule: Rule | None, path: str, now: datetime, calendar: WorkCalendar,
              limit: TimeLimit | None = None) -> tuple[datetime, datetime | None]:
    """When the department must acknowledge and resolve a task that reached it by `path`.

    The operator's time limit for the case's category and level (services/dispatch/time_limits.py),
    where one matches, is the case's, on its clock, whoever chose the department. Without one:

    A rule's minutes, on its clock (working time or wall), apply where the rule chose the
    department or where rework restarts the rule's clock. A choice made by hand has no rule to
    speak for it: the fixed defaults, on the wall clock (a reopened task without a rule too).
    A reroute restarts only the new department's time to acknowledge, still by hand; the
    resolve deadline stands (None), since the case has been open all along."""
    if limit is not None:
        ack, resolve, working = limit.ack_minutes, limit.resolve_minutes, limit.working_time
    elif rule is not None and path in (ROUTED, REOPENED):
        ack, resolve, working = rule.ack_minutes, rule.resolve_minutes, rule.working_time
    else:
        ack, resolve, working = DEFAULT_ACK_MINUTES, DEFAULT_RESOLVE_MINUTES, False

    def after(minutes: int) -> datetime:
        span = timedelta(minutes=minutes)
        return calendar.add(now, span) if working else now + span
    return after(ack), None if path == REROUTED else after(resolve)


# --- following the incident ----------------------------------------------------------------

INCIDENT_REPORTED = "incidents.incident.reported"  # makes the task
# What the task does when its incident changes (the value is also its history action), and
# the incidents events it leaves alone. dispatch imports nothing of incidents: the two deploy
# and change apart and share only the event contract (protos/gridbus/incidents/v1/events.proto).
# tests/dispatch/test_domain.py checks both against incidents' action table, so a new incident
# action fails there until dispatch says what its task does with it.
SYNC, REOPEN, CLOSE, RESUBMIT = "sync", "reopen", "close", "resubmit"
INCIDENT_REJECTED, INCIDENT_MERGED = "incident rejected", "incident merged"
# The incident's side procedures (services/dispatch/procedures.py has the task's own).
CASE_CLOCK, PARK, UNPARK, SUPERVISE, INCIDENT_VOIDED = "case clock", "park", "unpark", "supervise", "incident voided"
TASK_FOLLOWS = {
    "incidents.incident.dispatched": SYNC,  # a dispatcher dispatched it directly in incidents
    "incidents.incident.rerouted": SYNC,
    "incidents.incident.reopened": REOPEN,
    "incidents.incident.closed": CLOSE,
    "incidents.incident.rejected": INCIDENT_REJECTED,
    "incidents.incident.merged": INCIDENT_MERGED,
    "incidents.incident.resubmitted": RESUBMIT,  # routed again, as a new report would be
    # A void or park request stops the clock until it is decided (the event's clock_paused).
    "incidents.incident.void_requested": CASE_CLOCK,
    "incidents.incident.void_refused": CASE_CLOCK,
    "incidents.incident.park_requested": CASE_CLOCK,
    "incidents.incident.park_refused": CASE_CLOCK,
    "incidents.incident.voided": INCIDENT_VOIDED,
    "incidents.incident.parked": PARK,       # out of the queues; the review timer is set
    "incidents.incident.unparked": UNPARK,   # back with its department, the clock runs again
    "incidents.incident.supervised": SUPERVISE,  # priority 1; the department and its superior are told
}
TASK_IGNORES = frozenset({
    "incidents.incident.accepted",  # the echo of the task's own acknowledgement
    "incidents.incident.resolved",  # the echo of the task's own resolution
    "incidents.incident.verified",  # the officer's check on site: the task is done with
    "incidents.incident.returned",  # the echo of the task's own approved return
    "incidents.incident.supervision_requested",  # nothing changes until an admin decides
    "incidents.incident.supervision_refused",
    "incidents.incident.assist_added",  # the echo of an assisting task's own events
    "incidents.incident.assist_ended",
})


def escalation_unit(lineage: list[str], level: int) -> str:
    """Level 1 is the grid's community, 2 its street, 3 its district, 4 and above the city."""
    index = max(len(lineage) - 1 - level, 0)
    return lineage[index]


def level_name(lineage: list[str], level: int) -> str:
    return LEVELS[min(level, len(LEVELS) - 1)]


# --- who may do what -----------------------------------------------------------------------

def _grid(lineage: list[str]) -> list[str] | None:
    return [lineage[-1]] if lineage else None


def may_dispatch(p: Principal, lineage: list[str], rule: Rule_ = access.DISPATCH) -> None:
    shared_access.require(rule, p, units_=_grid(lineage), what="this task")


def may_handle(p: Principal, department_code: str | None) -> None:
    shared_access.require(access.HANDLE, p, owner=department_code,
                          what=f"this task (not assigned to department {p.member_id})")


def may_read(p: Principal, lineage: list[str], department_code: str | None) -> None:
    shared_access.require(access.READ_TASK, p, units_=_grid(lineage), owner=department_code,
                          what="this task")


def may_configure(p: Principal, unit_codes: list[str] | None, what: str) -> None:
    """unit_codes: where the department or rule applies; None: anywhere (a citywide admin)."""
    shared_access.require(access.CONFIGURE, p, units_=unit_codes, what=what)


def require_status(status: str, allowed: set[str], action: str) -> None:
    if status not in allowed:
        raise FailedPrecondition(f"cannot {action} a task that is {status}; {action} applies to "
                                 f"{', '.join(sorted(allowed))}")


# --- evaluation ----------------------------------------------------------------------------

# lineage[1] is the district, ...; a day is the dispatch day in the calendar's time zone. The
# arithmetic is services/dispatch/evaluation_rules.py.
GROUPINGS = ("department", "district", "street", "community", "grid", "day")
