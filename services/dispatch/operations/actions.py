"""What dispatchers and departments do to tasks: assign, reroute, reject, merge, acknowledge,
report progress, resolve. The incidents service moves the incident when it sees the events
(docs/service-contracts.md)."""
from __future__ import annotations

from sqlalchemy.orm import Session

from services.dispatch import domain, store
from services.dispatch.operations.changes import TaskView, calendar, limit_of, save, schedule, task_view
from shared import auth
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from shared.ids import parse_uuid
from shared.timefmt import utcnow


def _act(caller: Principal, task_id: str, expected_version: int, check, change, kind: str | None,
         action: str, note: str | None = None, extra=lambda before: {}) -> TaskView:
    """Locks and reads the task, checks it (`check(task)`), changes it (`change(session, task) ->
    values`) at the version the caller saw, and saves it with its history and event
    (`extra(task before)` adds to the event's data)."""
    tid = parse_uuid(task_id, "task id")
    if expected_version <= 0 and caller.role != auth.SERVICE:
        raise InvalidArgument("expected_version is required: the version you last read")
    with session_scope() as session:
        row = store.task(session, tid, for_update=True)
        if row is None:
            raise NotFound(f"no task {task_id}")
        t = task_view(row)
        check(t)
        if t.lead_task_id:
            if action not in domain.ASSIST_EVENTS:
                raise FailedPrecondition(f"cannot {action} an assisting task; a dispatcher releases it when it is "
                                         "not needed, and the lead department reports the case's result")
            kind = domain.ASSIST_EVENTS[action]
        if expected_version and t.version != expected_version:
            raise Aborted(f"task {task_id} changed: it is at version {t.version} ({t.status}), not "
                          f"{expected_version}; re-read and retry")
        values = change(session, t)
        return save(session, t, values, action=action, actor=(caller.member_id, caller.role), note=note,
                    event=kind, event_data=extra(t))


def _note(value: str | None, what: str, required: bool = True) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise InvalidArgument(f"{what} is required")
    if len(value) > 1000:
        raise InvalidArgument(f"{what}: at most 1000 characters")
    return value or None


def _department(session: Session, code: str, lineage: list[str]) -> None:
    domain.check_code(code, "department code")
    d = store.department(session, code)
    if d is None or not d.active:
        raise NotFound(f"no department {code}")
    if set(d.serves).isdisjoint(lineage):
        raise FailedPrecondition(f"department {code} does not work in grid {lineage[-1]}")


def assign(caller: Principal, task_id: str, department_code: str, expected_version: int) -> TaskView:
    """A dispatcher sends a task from the manual queue to a department."""
    def check(t):
        domain.may_dispatch(caller, t.lineage)
        domain.require_status(t.status, {domain.QUEUED}, "assign")

    def change(session, t):
        _department(session, department_code, t.lineage)
        now = utcnow()
        ack_due, resolve_due = domain.due_dates(None, domain.BY_HAND, now, calendar(), limit_of(t.category, t.priority))
        values = {"status": domain.ASSIGNED, "department_code": department_code, "dispatched_at": now,
                  "ack_due_at": ack_due, "resolve_due_at": resolve_due}
        store.cancel_deadlines(session, t.key, (domain.ASSIGN,))
        schedule(session, t.key, values, now)
        return values
    return _act(caller, task_id, expected_version, check, change, "assigned", "assign")


def reroute(caller: Principal, task_id: str, department_code: str, reason: str, expected_version: int) -> TaskView:
    note = _note(reason, "reason")

    def check(t):
        domain.may_dispatch(caller, t.lineage)
        domain.require_status(t.status, {domain.ASSIGNED, domain.ACKNOWLEDGED}, "reroute")
        if department_code == t.department_code:
            raise FailedPrecondition(f"the task is already with department {department_code}")

    def change(session, t):
        _department(session, department_code, t.lineage)
        ack_due, _ = domain.due_dates(None, domain.REROUTED, utcnow(), calendar(), limit_of(t.category, t.priority))
        store.cancel_deadlines(session, t.key, (domain.ACK,))
        store.add_deadline(session, t.key, domain.ACK, ack_due)
        return {"status": domain.ASSIGNED, "department_code": department_code, "acknowledged_at": None,
                "ack_due_at": ack_due}
    return _act(caller, task_id, expected_version, check, change, "rerouted", "reroute", note,
                lambda before: {"reason": note, "previous_department_code": before.department_code})


def reject(caller: Principal, task_id: str, reason: str, expected_version: int) -> TaskView:
    note = _note(reason, "reason")

    def check(t):
        domain.may_dispatch(caller, t.lineage)
        domain.require_status(t.status, {domain.QUEUED, domain.ASSIGNED}, "reject")

    def change(session, t):
        store.cancel_deadlines(session, t.key, domain.DEADLINE_KINDS)
        return {"status": domain.REJECTED}
    return _act(caller, task_id, expected_version, check, change, "rejected", "reject", note,
                lambda before: {"reason": note})


def merge(caller: Principal, task_id: str, into_incident_id: str, expected_version: int) -> TaskView:
    into = str(parse_uuid(into_incident_id, "into_incident_id"))

    def check(t):
        domain.may_dispatch(caller, t.lineage)
        domain.require_status(t.status, set(domain.OPEN), "merge")
        if into == t.incident_id:
            raise InvalidArgument("an incident cannot be merged into itself")

    def change(session, t):
        # The case it joins must be one the caller dispatches too: no merging into (and so
        # closing in favour of) another district's case.
        target = store.task_of_incident(session, into)
        if target is None:
            raise NotFound(f"no task for incident {into}")
        domain.may_dispatch(caller, task_view(target).lineage)
        store.cancel_deadlines(session, t.key, domain.DEADLINE_KINDS)
        return {"status": domain.MERGED}
    return _act(caller, task_id, expected_version, check, change, "merged", "merge",
                f"duplicate of {into}", lambda before: {"into_incident_id": into})


def acknowledge(caller: Principal, task_id: str, expected_version: int) -> TaskView:
    def check(t):
        domain.may_handle(caller, t.department_code)
        domain.require_status(t.status, {domain.ASSIGNED}, "acknowledge")

    def change(session, t):
        store.cancel_deadlines(session, t.key, (domain.ACK,))
        return {"status": domain.ACKNOWLEDGED, "acknowledged_at": utcnow()}
    return _act(caller, task_id, expected_version, check, change, "acknowledged", "acknowledge")


def report_progress(caller: Principal, task_id: str, note: str) -> TaskView:
    text_ = _note(note, "progress note")
    # A progress report changes no state, so it takes no expected version: any number may come in.
    tid = parse_uuid(task_id, "task id")
    with session_scope() as session:
        row = store.task(session, tid, for_update=True)  # reports that come in together take turns
        if row is None:
            raise NotFound(f"no task {task_id}")
        t = task_view(row)
        domain.may_handle(caller, t.department_code)
        domain.require_status(t.status, {domain.ACKNOWLEDGED}, "report progress on")
        # An empty change still numbers the event.
        return save(session, t, {}, action="progress", actor=(caller.member_id, caller.role), note=text_,
                    event="progress", event_data={"note": text_})


def resolve(caller: Principal, task_id: str, resolution: str, expected_version: int) -> TaskView:
    note = _note(resolution, "resolution")

    def check(t):
        domain.may_handle(caller, t.department_code)
        domain.require_status(t.status, {domain.ACKNOWLEDGED}, "resolve")

    def change(session, t):
        store.cancel_deadlines(session, t.key, (domain.ACK, domain.RESOLVE))
        return {"status": domain.RESOLVED, "resolved_at": utcnow()}
    return _act(caller, task_id, expected_version, check, change, "resolved", "resolve", note,
                lambda before: {"resolution": note})
