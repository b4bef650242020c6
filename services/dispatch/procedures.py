"""The task's side procedures (extension 延期, return 回退) and the deadline clock's pauses.
Plain Python, no I/O.

A procedure is asked for by the task's department, with a reason, and decided by a dispatcher
(or an admin) other than the asker, approving or refusing with a reason. While the request
waits, the task's deadline clock stands still; so it does while its incident has a void or
park request waiting or is parked (incidents says so in its events' `clock_paused`). The case's
own procedures (void, park, supervise) are incidents' (services/incidents/domain.py PROCEDURES).

The clock is paused in working time: when it runs again, every deadline not yet met moves later
by the working time it stood still (the calendar's), and an approved extension moves the
resolve deadline by the granted working time."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.dispatch.calendar import WorkCalendar
from services.dispatch.domain import ACKNOWLEDGED, ASSIGNED
from services.dispatch import access
from shared import access as shared_access, auth
from shared.auth import Principal
from shared.errors import FailedPrecondition, InvalidArgument, PermissionDenied

EXTENSION, RETURN = "extension", "return"
CASE_HOLD = "case"  # the incident's procedures hold the clock; incidents says when it runs again
MAX_EXTENSION_MINUTES = 22 * 8 * 60  # a month of working days


@dataclass(frozen=True)
class TaskProcedure:
    name: str
    sources: frozenset[str]            # the task statuses it may be asked for (and decided) in
    requesters: frozenset[str]
    deciders: frozenset[str]
    events: tuple[str, str, str]       # dispatch.task.<requested>, <approved>, <refused>
    takes_minutes: bool = False        # the request names working minutes (the decision may grant fewer)

    @property
    def hold(self) -> str:
        return self.name


TASK_PROCEDURES: dict[str, TaskProcedure] = {p.name: p for p in (
    TaskProcedure(EXTENSION, frozenset({ASSIGNED, ACKNOWLEDGED}), frozenset({auth.DEPARTMENT}),
                  frozenset({auth.DISPATCHER, auth.ADMIN}), ("extension_requested", "extended", "extension_refused"),
                  takes_minutes=True),
    TaskProcedure(RETURN, frozenset({ASSIGNED, ACKNOWLEDGED}), frozenset({auth.DEPARTMENT}),
                  frozenset({auth.DISPATCHER, auth.ADMIN}), ("return_requested", "returned", "return_refused")),
)}
EVENTS = tuple(e for p in TASK_PROCEDURES.values() for e in p.events)


@dataclass(frozen=True)
class TaskState:
    """What the procedure rules need to know about a task."""
    status: str
    department_code: str | None
    lineage: tuple[str, ...]
    pending: str | None
    pending_by: str | None


def procedure(name: str) -> TaskProcedure:
    p = TASK_PROCEDURES.get(name)
    if p is None:
        raise InvalidArgument(f"unknown procedure {name!r}; one of {', '.join(TASK_PROCEDURES)}")
    return p


def check_reason(value: str | None, what: str = "reason") -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidArgument(f"{what} is required: say why")
    if len(value) > 1000:
        raise InvalidArgument(f"{what}: at most 1000 characters")
    return value


def plan_request(p: Principal, t: TaskState, name: str, minutes: int) -> TaskProcedure:
    """Checks a request: the procedure, the caller (the task's department), the task's state
    and that no other request waits; then the minutes an extension asks for."""
    proc = procedure(name)
    if p.role not in proc.requesters:
        raise PermissionDenied(f"role {p.role} may not ask for {name}")
    if p.role == auth.DEPARTMENT and p.member_id != t.department_code:
        raise PermissionDenied(f"this task is not assigned to department {p.member_id}")
    if t.status not in proc.sources:
        raise FailedPrecondition(f"cannot ask for {name} on a task that is {t.status}; "
                                 f"{name} applies to {', '.join(sorted(proc.sources))}")
    if t.pending:
        raise FailedPrecondition(f"a {t.pending} request is waiting for its decision; "
                                 "it is decided before another is asked")
    if proc.takes_minutes:
        if not 0 < minutes <= MAX_EXTENSION_MINUTES:
            raise InvalidArgument(f"minutes: the working minutes asked for, 1..{MAX_EXTENSION_MINUTES}")
    elif minutes:
        raise InvalidArgument(f"{name} takes no minutes")
    return proc


def plan_decision(p: Principal, t: TaskState, name: str, approve: bool, granted: int,
                  asked: int | None) -> tuple[TaskProcedure, int]:
    """Checks a decision; returns the procedure and, for an approved extension, the working
    minutes granted (0: what was asked)."""
    proc = procedure(name)
    if p.role not in proc.deciders:
        raise PermissionDenied(f"role {p.role} may not decide {name}")
    shared_access.require(access.DECIDE_PROCEDURE, p, units_=list(t.lineage[-1:]), what="this task")
    if t.pending != name:
        raise FailedPrecondition(f"no {name} request is waiting for a decision")
    if t.pending_by == p.member_id:
        raise PermissionDenied(f"the member who asked for {name} may not decide it")
    if not proc.takes_minutes or not approve:
        if granted:
            raise InvalidArgument("granted_minutes only goes with approving an extension")
        return proc, 0
    if not 0 <= granted <= (asked or 0):
        raise InvalidArgument(f"granted_minutes: 0 (all) up to the {asked} asked for")
    return proc, granted or (asked or 0)


# --- the clock -----------------------------------------------------------------------------

def with_hold(holds: list[str], hold: str) -> list[str]:
    return holds if hold in holds else [*holds, hold]


def without_hold(holds: list[str], hold: str) -> list[str]:
    return [h for h in holds if h != hold]


def moved_due(due: datetime | None, paused_at: datetime, paused: timedelta, calendar: WorkCalendar) -> datetime | None:
    """A deadline after the clock stood still from `paused_at` for `paused` of working time:
    later by that much working time. A deadline already missed when the clock stopped stays
    missed (it has escalated)."""
    if due is None or due <= paused_at or not paused:
        return due
    return calendar.add(due, paused)


def extended_due(due: datetime | None, granted: timedelta, calendar: WorkCalendar) -> datetime | None:
    return None if due is None else calendar.add(due, granted)


def span(minutes: int) -> timedelta:
    return timedelta(minutes=minutes)


def minutes_of(span_: timedelta) -> int:
    return round(span_ / timedelta(minutes=1))


def describe(span_: timedelta) -> str:
    minutes = minutes_of(span_)
    return f"{minutes // 60}h{minutes % 60:02d}m"
