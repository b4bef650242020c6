"""How a task changes: the one function every change goes through, the task as callers see it,
and the deadlines a change schedules.

Every change commits together with its history row and its `dispatch.task.*` event (outbox):
the caller reads the task under its row lock (or makes a new one), `save` writes it at the
version read, records the history, reads it back and records the event, all in the caller's
transaction, so the event leaves only after the change has committed."""
from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy.orm import Session

from services.dispatch import domain, store
from services.dispatch.calendar import WorkCalendar, parse_calendar
from services.dispatch.time_limits import TimeLimit, limit_for, parse_time_limits
from services.dispatch.routing_table import routing
from shared import auth
from shared.auth import Principal
from shared.config import settings
from shared.errors import Aborted
from shared.outbox import record_event
from shared.timefmt import iso_utc, utcnow

SCHEMA = store.SCHEMA
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
SYSTEM = Principal("dispatch", auth.SERVICE, ())
SYSTEM_ACTOR = (SYSTEM.member_id, SYSTEM.role)


@functools.lru_cache(maxsize=1)
def calendar() -> WorkCalendar:
    with open(settings().dispatch_calendar or CONFIG_DIR / "calendar.yaml", encoding="utf-8") as f:
        return parse_calendar(yaml.safe_load(f))


@functools.lru_cache(maxsize=1)
def time_limits() -> tuple[TimeLimit, ...]:
    """The operator's time limits per category and level, checked when loaded."""
    with open(settings().dispatch_time_limits or CONFIG_DIR / "time_limits.yaml", encoding="utf-8") as f:
        return parse_time_limits(yaml.safe_load(f))


def limit_of(category: str, priority: int) -> TimeLimit | None:
    return limit_for(time_limits(), category, priority)


@dataclass
class TaskView:
    id: str
    incident_id: str
    status: str
    department_code: str | None
    rule_id: int | None
    category: str
    priority: int
    grid_code: str
    lineage: list[str]
    dispatched_at: datetime | None
    ack_due_at: datetime | None
    acknowledged_at: datetime | None
    resolve_due_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reopened: int
    escalation_level: int
    escalated_to: str | None
    version: int
    created_at: datetime
    next_due_at: datetime | None
    pending: str | None = None          # extension or return, waiting for its decision
    pending_by: str | None = None
    pending_minutes: int | None = None  # the working minutes an extension asks for
    holds: list[str] = field(default_factory=list)  # why the deadline clock stands still; empty: it runs
    paused_at: datetime | None = None
    paused_minutes: int = 0             # working minutes the clock stood still, all told
    extended_minutes: int = 0           # working minutes granted by extensions, all told
    returned: int = 0                   # approved returns
    supervised: bool = False
    lead_task_id: str | None = None     # an assisting task (协办): the case's lead task; None: the lead (主办)
    assists: list = field(default_factory=list)  # the lead's assisting tasks (GetTask only)
    history: list = field(default_factory=list)

    @property
    def key(self) -> uuid.UUID:
        """The id as the store takes it."""
        return uuid.UUID(self.id)


def task_view(row) -> TaskView:
    return TaskView(**{k: getattr(row, k) for k in (
        "status", "department_code", "rule_id", "category", "priority", "grid_code", "dispatched_at",
        "ack_due_at", "acknowledged_at", "resolve_due_at", "resolved_at", "closed_at", "reopened",
        "escalation_level", "escalated_to", "version", "created_at", "next_due_at", "pending", "pending_by",
        "pending_minutes", "paused_at", "paused_minutes", "extended_minutes", "returned", "supervised")},
        id=str(row.id), incident_id=str(row.incident_id), lineage=list(row.lineage), holds=list(row.holds),
        lead_task_id=str(row.lead_task_id) if row.lead_task_id else None)


def _event_data(t: TaskView, actor: tuple[str, str], extra: dict) -> dict:
    data = {"task_id": t.id, "incident_id": t.incident_id, "status": t.status,
            "department_code": t.department_code, "rule_id": t.rule_id, "category": t.category,
            "priority": t.priority, "grid_code": t.grid_code, "lineage": t.lineage,
            "ack_due_at": iso_utc(t.ack_due_at), "resolve_due_at": iso_utc(t.resolve_due_at),
            "escalation_level": t.escalation_level, "actor": {"id": actor[0], "role": actor[1]},
            "at": iso_utc(utcnow()), "pending": t.pending, "clock_paused": bool(t.holds),
            "supervised": t.supervised, "lead_task_id": t.lead_task_id}
    data.update({k: (iso_utc(v) if isinstance(v, datetime) else v) for k, v in extra.items()})
    return data


def save(session: Session, before: TaskView | None, values: dict, *, action: str, actor: tuple[str, str],
         note: str | None = None, event: str | None = None, event_actor: tuple[str, str] | None = None,
         event_data: dict | None = None) -> TaskView | None:
    """Writes `values` to the task as `before` was read (None: `values` is a new task; returns
    None when its incident already has one), appends the history row for `action` by `actor`,
    reads the task back and, when `event` is given, records `dispatch.task.<event>` as
    `event_actor` (default: `actor`) with `event_data` added to its payload."""
    if before is None:
        if not store.insert_task(session, values):
            return None
        task_id, from_status, to_status = values["id"], None, values["status"]
        department = values["department_code"]
    else:
        task_id = before.key
        if store.update_task(session, task_id, before.version, values) is None:
            raise Aborted(f"task {before.id} changed while you acted on it; re-read and retry")
        from_status, to_status = before.status, values.get("status", before.status)
        department = values.get("department_code", before.department_code)
    store.history(session, task_id, action, from_status, to_status, department, actor[0], actor[1], note)
    after = task_view(store.task(session, task_id))
    if event:
        announce(session, after, event, event_actor or actor, event_data)
    return after


def announce(session: Session, after: TaskView, event: str, actor: tuple[str, str], extra: dict | None = None) -> None:
    """Records `dispatch.task.<event>` for the task as it now is."""
    record_event(session, SCHEMA, f"dispatch.task.{event}", f"tasks/{after.id}",
                 _event_data(after, actor, extra or {}), subject_sequence=after.version)


# --- routing and deadlines -----------------------------------------------------------------

def routed_values(session: Session, category: str, lineage: list[str], now: datetime, priority: int) -> dict:
    """The task's department and deadlines by the winning rule (and the case's time limit), or
    the manual queue."""
    table = routing(session)  # cached until a rule or department changes (routing_table.py)
    rule = domain.route(table.rules, category, lineage, table.serves())
    if rule is None:
        return {"status": domain.QUEUED, "department_code": None, "rule_id": None, "dispatched_at": None,
                "ack_due_at": None, "resolve_due_at": None}
    ack_due, resolve_due = domain.due_dates(rule, domain.ROUTED, now, calendar(), limit_of(category, priority))
    return {"status": domain.ASSIGNED, "department_code": rule.department_code, "rule_id": rule.id,
            "dispatched_at": now, "ack_due_at": ack_due, "resolve_due_at": resolve_due}


def schedule(session: Session, task_id: uuid.UUID, values: dict, now: datetime,
             limit: TimeLimit | None = None) -> None:
    """The deadline rows for a task in the manual queue, or with its department."""
    for kind, due in deadlines(values, now, limit):
        store.add_deadline(session, task_id, kind, due)


def deadlines(values: dict, now: datetime, limit: TimeLimit | None = None) -> list[tuple[str, datetime]]:
    """(kind, due) of the deadlines a task in the manual queue, or with its department, starts with."""
    if values["status"] == domain.QUEUED:
        # How long an unrouted task may wait in the manual queue before it escalates: the time
        # limit to file its category, or the setting.
        if limit is not None and limit.file_minutes:
            span = timedelta(minutes=limit.file_minutes)
            due = calendar().add(now, span) if limit.working_time else now + span
        else:
            due = now + timedelta(minutes=settings().dispatch_assign_minutes)
        return [(domain.ASSIGN, due)]
    return [(domain.ACK, values["ack_due_at"]), (domain.RESOLVE, values["resolve_due_at"])]
