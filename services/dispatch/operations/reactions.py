"""Reactions to the incidents service's events: a reported incident gets its task, and the task
follows its incident (closure, rework, resubmission, a dispatcher's direct moves).

Each event is claimed in the same transaction as its change (inbox), so a redelivery or a crash
half way never makes a second task or a second change. Which events the task follows, and how,
is domain.TASK_FOLLOWS."""
from __future__ import annotations

import uuid
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy.orm import Session

from services.dispatch import domain, store
from services.dispatch.operations import case_procedures
from services.dispatch.operations.assists import release_open_assists
from services.dispatch.operations.changes import (SYSTEM, SYSTEM_ACTOR, TaskView, announce, calendar,
                                                  deadlines, limit_of, routed_values, save, schedule, task_view)
from shared import failpoints
from shared.db import session_scope
from shared.timefmt import utcnow

CONSUMER_REPORTED = "dispatch.on_incident_reported"


def on_incident_reported(event: dict) -> str:
    """One task per incident: routed to a department, or to its district's manual queue.

    The inbox claim, the task, its history and its deadlines are one statement (the routing
    table is cached), then the event: two round trips besides the transaction's own."""
    data = event["data"]
    now = utcnow()
    lineage = list(data["lineage"])
    priority = data.get("priority") or 4
    with session_scope() as session:
        values = routed_values(session, data["category"], lineage, now, priority)
        values.update(id=uuid.uuid4(), incident_id=data["incident_id"], category=data["category"],
                      priority=priority, grid_code=data["grid_code"], lineage=lineage)
        due = deadlines(values, now, limit_of(data["category"], priority))
        note = "routed by rule" if values["rule_id"] else "manual queue"
        claimed, row = store.claim_and_create_task(session, CONSUMER_REPORTED, event, values,
                                                   ("create", *SYSTEM_ACTOR, note), due)
        if not claimed:
            return "duplicate event"
        if row is None:
            return "task exists"
        task = task_view(SimpleNamespace(**row._mapping, next_due_at=min(d for _, d in due)))
        announce(session, task, "created", SYSTEM_ACTOR)
        failpoints.hit("dispatch.before_commit")
        return "routed" if values["rule_id"] else "manual queue"


# Each reaction: (session, task, event data, now) -> (the task's new values, the event it
# emits or None), or None when the task is already in step.

def _sync(session: Session, t: TaskView, data: dict, now: datetime):
    """A dispatcher moved the incident in the incidents service directly."""
    if data.get("department_code") in (None, t.department_code):
        return None
    values = {"department_code": data["department_code"], "status": domain.ASSIGNED,
              "dispatched_at": t.dispatched_at or now}
    if t.status == domain.QUEUED:  # out of the manual queue: its deadlines become the department's
        values["ack_due_at"], values["resolve_due_at"] = domain.due_dates(None, domain.BY_HAND, now, calendar(),
                                                                          limit_of(t.category, t.priority))
        store.cancel_deadlines(session, t.key, (domain.ASSIGN,))
        schedule(session, t.key, values, now)
    return values, None


def _close(session: Session, t: TaskView, data: dict, now: datetime):
    store.cancel_deadlines(session, t.key, domain.DEADLINE_KINDS)
    return {"status": domain.CLOSED, "closed_at": now}, "closed"


def _ends_as(status: str):
    def end(session: Session, t: TaskView, data: dict, now: datetime):
        store.cancel_deadlines(session, t.key, domain.DEADLINE_KINDS)
        return {"status": status}, None
    return end


def _reopen(session: Session, t: TaskView, data: dict, now: datetime):
    rule = store.rule(session, t.rule_id) if t.rule_id else None
    ack_due, resolve_due = domain.due_dates(rule, domain.REOPENED, now, calendar(), limit_of(t.category, t.priority))
    values = {"status": domain.ASSIGNED, "reopened": t.reopened + 1, "acknowledged_at": None,
              "resolved_at": None, "ack_due_at": ack_due, "resolve_due_at": resolve_due}
    store.cancel_deadlines(session, t.key, domain.DEADLINE_KINDS)
    schedule(session, t.key, values, now)
    return values, "reopened"


def _route_again(session: Session, t: TaskView, data: dict, now: datetime):
    """A resubmitted incident is routed again, as a new report would be."""
    values = routed_values(session, t.category, t.lineage, now, t.priority)
    store.cancel_deadlines(session, t.key, domain.DEADLINE_KINDS)
    schedule(session, t.key, values, now, limit_of(t.category, t.priority))
    return values, "assigned" if values["department_code"] else None


_REACTIONS = {domain.SYNC: _sync, domain.CLOSE: _close, domain.REOPEN: _reopen, domain.RESUBMIT: _route_again,
              domain.INCIDENT_REJECTED: _ends_as(domain.REJECTED), domain.INCIDENT_MERGED: _ends_as(domain.MERGED),
              domain.INCIDENT_VOIDED: _ends_as(domain.VOIDED)}


def on_incident_changed(event: dict) -> str:
    """Keeps the task in step with its incident."""
    reaction = domain.TASK_FOLLOWS.get(event["type"])
    if reaction is None:
        return "ignored"
    data = event["data"]
    now = utcnow()
    who = data.get("actor") or {}
    actor = (str(who.get("id", "incidents")), str(who.get("role", "service")))
    if reaction == domain.SYNC and actor[0] == SYSTEM.member_id:
        return "in step"  # the echo of this service's own dispatch: nothing to read or write
    with session_scope() as session:
        claimed, row = store.claim_and_lock_task_of_incident(session, "dispatch.on_incident_changed", event,
                                                             data["incident_id"])
        if not claimed:
            return "duplicate event"
        if row is None:
            return "no task"
        t = task_view(row)
        if reaction in case_procedures.REACTIONS:
            case_procedures.REACTIONS[reaction](session, t, event, now, actor)
            return reaction
        change = _REACTIONS[reaction](session, t, data, now)
        if change is None:
            return "in step"
        values, emits = change
        save(session, t, values, action=reaction, actor=actor, note=data.get("note"), event=emits,
             event_actor=SYSTEM_ACTOR)
        if values.get("status") in domain.FINAL:
            release_open_assists(session, t, f"the case ended ({event['type'].rsplit('.', 1)[1]})", now)
        return reaction
