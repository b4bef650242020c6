"""The task's side procedures: a department asks for an extension (延期) or a return (回退),
a dispatcher decides. The rules are services/dispatch/procedures.py; the incident follows an
approved return from its event (dispatch.task.returned)."""
from __future__ import annotations

from sqlalchemy.orm import Session

from services.dispatch import domain, procedures, store
from services.dispatch.operations.changes import TaskView, calendar, save, schedule, task_view
from services.dispatch.operations.clock import hold, release
from shared import auth
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from shared.ids import parse_uuid
from shared.timefmt import utcnow


def _locked(session: Session, caller: Principal, task_id: str, expected_version: int) -> TaskView:
    tid = parse_uuid(task_id, "task id")
    if expected_version <= 0 and caller.role != auth.SERVICE:
        raise InvalidArgument("expected_version is required: the version you last read")
    row = store.task(session, tid, for_update=True)
    if row is None:
        raise NotFound(f"no task {task_id}")
    return task_view(row)


def _state(t: TaskView) -> procedures.TaskState:
    return procedures.TaskState(t.status, t.department_code, tuple(t.lineage), t.pending, t.pending_by)


def _check_version(t: TaskView, expected_version: int) -> None:
    if expected_version and t.version != expected_version:
        raise Aborted(f"task {t.id} changed: it is at version {t.version} ({t.status}), not "
                      f"{expected_version}; re-read and retry")


def request(caller: Principal, task_id: str, name: str, reason: str, minutes: int,
            expected_version: int) -> TaskView:
    """The department asks; the clock stops until a dispatcher decides."""
    note = procedures.check_reason(reason)
    with session_scope() as session:
        t = _locked(session, caller, task_id, expected_version)
        proc = procedures.plan_request(caller, _state(t), name, minutes)
        if t.lead_task_id and name == procedures.RETURN:
            raise FailedPrecondition("an assisting department that is not needed is released by a dispatcher")
        _check_version(t, expected_version)
        actor = (caller.member_id, caller.role)
        t = save(session, t, {"pending": name, "pending_by": caller.member_id, "pending_minutes": minutes or None},
                 action=f"request {name}", actor=actor, note=note, event=proc.events[0],
                 event_data={"procedure": name, "reason": note, "minutes": minutes})
        return hold(session, t, proc.hold, utcnow(), actor, f"{name} requested")


def decide(caller: Principal, task_id: str, name: str, approve: bool, reason: str, granted_minutes: int,
           expected_version: int) -> TaskView:
    """A dispatcher approves or refuses the waiting request; the clock runs again (the
    deadlines moved by the time it stood still), then an approved extension moves the resolve
    deadline by the granted working time and an approved return puts the task back in the
    manual queue for rerouting."""
    note = procedures.check_reason(reason)
    with session_scope() as session:
        t = _locked(session, caller, task_id, expected_version)
        proc, granted = procedures.plan_decision(caller, _state(t), name, approve, granted_minutes,
                                                 t.pending_minutes)
        _check_version(t, expected_version)
        now, actor = utcnow(), (caller.member_id, caller.role)
        t = release(session, t, proc.hold, now, actor, f"{name} {'approved' if approve else 'refused'}")
        values = {"pending": None, "pending_by": None, "pending_minutes": None}
        extra = {"procedure": name, "reason": note}
        if approve and name == procedures.EXTENSION:
            values.update(_extended(session, t, granted))
            extra["granted_minutes"] = granted
        elif approve and name == procedures.RETURN:
            values.update(_returned(session, t, now))
            extra["previous_department_code"] = t.department_code
        return save(session, t, values, action=f"{'approve' if approve else 'refuse'} {name}", actor=actor,
                    note=note, event=proc.events[1 if approve else 2], event_data=extra)


def _extended(session: Session, t: TaskView, granted: int) -> dict:
    new_due = procedures.extended_due(t.resolve_due_at, procedures.span(granted), calendar())
    if t.status in domain.OPEN and new_due is not None and not t.holds:
        store.cancel_deadlines(session, t.key, (domain.RESOLVE,))
        store.add_deadline(session, t.key, domain.RESOLVE, new_due)
    return {"resolve_due_at": new_due, "extended_minutes": t.extended_minutes + granted}


def _returned(session: Session, t: TaskView, now) -> dict:
    """Back to the manual queue, as an unrouted task waits for a dispatcher."""
    store.cancel_deadlines(session, t.key, domain.DEADLINE_KINDS)
    values = {"status": domain.QUEUED, "department_code": None, "acknowledged_at": None, "ack_due_at": None,
              "resolve_due_at": None, "returned": t.returned + 1}
    schedule(session, t.key, values, now)
    return values
