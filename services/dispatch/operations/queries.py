"""Reading tasks: one task, the task of an incident, a dispatcher's or department's queue."""
from __future__ import annotations

from sqlalchemy import text

from services.dispatch import access, domain, store
from services.dispatch.operations.changes import TaskView, task_view
from shared import access as shared_access, auth, units
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import InvalidArgument, NotFound
from shared.ids import parse_uuid

MAX_QUEUE = 500


def get_task(caller: Principal, task_id: str) -> TaskView:
    tid = parse_uuid(task_id, "task id")
    with session_scope() as session:
        row = store.task(session, tid)
        if row is None:
            raise NotFound(f"no task {task_id}")
        t = task_view(row)
        domain.may_read(caller, t.lineage, t.department_code)
        t.history = store.task_history(session, tid)
        if not t.lead_task_id:
            t.assists = [task_view(r) for r in store.assists(session, tid)]
        return t


def task_of_incident(caller: Principal, incident_id: str) -> TaskView:
    incident_id = str(parse_uuid(incident_id, "incident id"))
    with session_scope() as session:
        row = store.task_of_incident(session, incident_id)
        if row is None:
            raise NotFound(f"no task for incident {incident_id}")
        t = task_view(row)
        domain.may_read(caller, t.lineage, t.department_code)
        return t


def list_queue(caller: Principal, *, unit_code: str = "", statuses: list[str] | None = None,
               department_code: str = "", escalated_only: bool = False, limit: int = 100) -> list[TaskView]:
    """Open tasks (or those in `statuses`), the nearest deadline first."""
    if not 0 < limit <= MAX_QUEUE:
        raise InvalidArgument(f"limit must be 1..{MAX_QUEUE}")
    for s in statuses or []:
        if s not in domain.STATUSES:
            raise InvalidArgument(f"unknown status {s!r}")
    scope = None
    if shared_access.scope_of(access.QUEUE, caller) == shared_access.OWN_RECORD:
        shared_access.require(access.QUEUE, caller, owner=department_code or caller.member_id,
                              what=f"the queue of department {department_code}")
        department_code = caller.member_id
    elif unit_code:
        domain.may_dispatch(caller, units.lineage(unit_code), access.QUEUE)
    elif caller.role != auth.SERVICE:
        scope = caller.scope  # what lies in the caller's scope
    with session_scope() as session:
        rows = store.queue(session, unit_code=unit_code or None, scope=scope, department=department_code or None,
                           statuses=list(statuses or []), escalated_only=escalated_only, limit=limit)
        return [task_view(r) for r in rows]


def health() -> dict:
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    return {"status": "SERVING"}
