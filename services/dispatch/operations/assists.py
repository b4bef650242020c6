"""Lead and assisting departments (主办/协办): a dispatcher adds assisting departments to a case,
each with its own task and deadlines; an assisting department acknowledges and reports its part
done (dispatch.task.assist_*), never the case's result, which only the lead reports; a
dispatcher releases an assisting task that is not needed. incidents keeps the case's open
assisting departments from these events and closes the case only when there are none."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from services.dispatch import domain, store
from services.dispatch.operations.actions import _department, _note
from services.dispatch.operations.changes import SYSTEM_ACTOR, TaskView, calendar, save, schedule, task_view
from shared import auth
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from shared.ids import parse_uuid
from shared.timefmt import utcnow


def _locked(session: Session, caller: Principal, task_id: str, expected_version: int) -> TaskView:
    if expected_version <= 0 and caller.role != auth.SERVICE:
        raise InvalidArgument("expected_version is required: the version you last read")
    row = store.task(session, parse_uuid(task_id, "task id"), for_update=True)
    if row is None:
        raise NotFound(f"no task {task_id}")
    t = task_view(row)
    domain.may_dispatch(caller, t.lineage)
    if expected_version and t.version != expected_version:
        raise Aborted(f"task {task_id} changed: it is at version {t.version} ({t.status}), not "
                      f"{expected_version}; re-read and retry")
    return t


def add_assist(caller: Principal, task_id: str, department_code: str, reason: str,
               expected_version: int) -> TaskView:
    """An assisting department for the case of lead task `task_id`, with its own task and the
    deadlines of a choice made by hand. Returns the lead task with its assisting tasks."""
    note = _note(reason, "reason")
    with session_scope() as session:
        lead = _locked(session, caller, task_id, expected_version)
        if lead.lead_task_id:
            raise FailedPrecondition("this is an assisting task; add assisting departments to the lead task")
        domain.require_status(lead.status, {domain.ASSIGNED, domain.ACKNOWLEDGED}, "add an assisting department to")
        if department_code == lead.department_code:
            raise FailedPrecondition(f"department {department_code} leads this case")
        _department(session, department_code, lead.lineage)
        now, actor = utcnow(), (caller.member_id, caller.role)
        ack_due, resolve_due = domain.due_dates(None, domain.BY_HAND, now, calendar())
        values = {"id": uuid.uuid4(), "incident_id": lead.incident_id, "status": domain.ASSIGNED,
                  "department_code": department_code, "rule_id": None, "category": lead.category,
                  "priority": lead.priority, "grid_code": lead.grid_code, "lineage": lead.lineage,
                  "dispatched_at": now, "ack_due_at": ack_due, "resolve_due_at": resolve_due,
                  "lead_task_id": lead.key}
        assist = save(session, None, values, action="assist", actor=actor, note=note, event="assist_assigned",
                      event_data={"reason": note})
        if assist is None:
            raise FailedPrecondition(f"department {department_code} assists on this case already")
        schedule(session, assist.key, values, now)
        lead = save(session, lead, {}, action="add assist", actor=actor, note=f"{department_code} assists: {note}")
        lead.assists = [task_view(r) for r in store.assists(session, lead.key)]
        return lead


def release_assist(caller: Principal, task_id: str, reason: str, expected_version: int) -> TaskView:
    """A dispatcher lets an assisting task go (its part is not needed)."""
    note = _note(reason, "reason")
    with session_scope() as session:
        t = _locked(session, caller, task_id, expected_version)
        if not t.lead_task_id:
            raise FailedPrecondition("only an assisting task is released; the lead's is rerouted or rejected")
        domain.require_status(t.status, set(domain.OPEN), "release")
        return _release(session, t, (caller.member_id, caller.role), note)


def _release(session: Session, t: TaskView, actor: tuple[str, str], note: str) -> TaskView:
    store.cancel_deadlines(session, t.key, domain.DEADLINE_KINDS)
    return save(session, t, {"status": domain.RELEASED}, action="release", actor=actor, note=note,
                event="assist_released", event_data={"reason": note})


def release_open_assists(session: Session, lead: TaskView, why: str, now: datetime) -> int:
    """The case ended another way (rejected, merged, voided): its assisting tasks end with it."""
    released = 0
    for row in store.assists(session, lead.key, for_update=True):
        t = task_view(row)
        if t.status in domain.OPEN:
            _release(session, t, SYSTEM_ACTOR, why)
            released += 1
    return released
