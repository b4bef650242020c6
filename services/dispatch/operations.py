"""What the dispatch service does, called by both entry points (gRPC and nameko).

Every change commits together with its `dispatch.task.*` event (outbox) and its history row;
events the service consumes are claimed in the same transaction (inbox), so a redelivery or a
crash half way never makes a second task or a second dispatch. The incidents service moves the
incident when it sees these events (docs/service-contracts.md)."""
from __future__ import annotations

import functools
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.dispatch import domain, store
from services.dispatch.calendar import WorkCalendar, parse_calendar
from shared import auth, failpoints
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from shared.inbox import first_delivery
from shared.outbox import record_event

log = logging.getLogger(__name__)

SCHEMA = store.SCHEMA
CONFIG_DIR = Path(__file__).resolve().parent / "config"
SYSTEM = Principal("dispatch", auth.SERVICE, ())
MAX_QUEUE = 500


def _minutes(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


def assign_minutes() -> float:
    """How long an unrouted task may wait in the manual queue before it escalates."""
    return _minutes("GRIDBUS_DISPATCH_ASSIGN_MINUTES", 30)


def escalation_minutes() -> float:
    """How long each escalation level has to act before the next one is told."""
    return _minutes("GRIDBUS_DISPATCH_ESCALATION_MINUTES", 60)


DEFAULT_ACK_MINUTES, DEFAULT_RESOLVE_MINUTES = 60, 24 * 60  # a manual assignment with no rule


@functools.lru_cache(maxsize=1)
def calendar() -> WorkCalendar:
    path = os.environ.get("GRIDBUS_DISPATCH_CALENDAR", str(CONFIG_DIR / "calendar.yaml"))
    with open(path, encoding="utf-8") as f:
        return parse_calendar(yaml.safe_load(f))


def due(start: datetime, minutes: int, working_time: bool) -> datetime:
    span = timedelta(minutes=minutes)
    return calendar().add(start, span) if working_time else start + span


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
    history: list = field(default_factory=list)


def _view(row) -> TaskView:
    return TaskView(**{k: getattr(row, k) for k in (
        "status", "department_code", "rule_id", "category", "priority", "grid_code", "dispatched_at",
        "ack_due_at", "acknowledged_at", "resolve_due_at", "resolved_at", "closed_at", "reopened",
        "escalation_level", "escalated_to", "version", "created_at", "next_due_at")},
        id=str(row.id), incident_id=str(row.incident_id), lineage=list(row.lineage))


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if when else None


def _event(session: Session, kind: str, t: TaskView, actor: tuple[str, str], **extra) -> None:
    data = {"task_id": t.id, "incident_id": t.incident_id, "status": t.status,
            "department_code": t.department_code, "rule_id": t.rule_id, "category": t.category,
            "priority": t.priority, "grid_code": t.grid_code, "lineage": t.lineage,
            "ack_due_at": _iso(t.ack_due_at), "resolve_due_at": _iso(t.resolve_due_at),
            "escalation_level": t.escalation_level, "actor": {"id": actor[0], "role": actor[1]},
            "at": _iso(datetime.now(timezone.utc))}
    data.update({k: (_iso(v) if isinstance(v, datetime) else v) for k, v in extra.items()})
    record_event(session, SCHEMA, f"dispatch.task.{kind}", f"tasks/{t.id}", data, subject_sequence=t.version)


def _task_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidArgument(f"task id {value!r} is not a UUID")


def _serves(session: Session):
    served = {d.code: list(d.serves) for d in store.departments(session) if d.active}
    return lambda code, lineage: code in served and not set(served[code]).isdisjoint(lineage)


# --- departments and rules -----------------------------------------------------------------

def upsert_department(caller: Principal, code: str, name: str, serves: list[str], contact: str = "") -> None:
    domain.may_configure(caller)
    domain.check_code(code, "department code")
    if not (name or "").strip():
        raise InvalidArgument("department name is required")
    if not serves or any(domain.unit_depth(u) == 0 for u in serves):
        raise InvalidArgument("serves: one or more unit codes the department works in")
    with session_scope() as session:
        store.upsert_department(session, code, name.strip(), sorted(set(serves)), contact or "")


def list_departments(caller: Principal) -> list:
    auth.require_role(caller, auth.ADMIN, auth.SERVICE, auth.DISPATCHER, auth.DEPARTMENT)
    with session_scope() as session:
        return store.departments(session)


def _create_rule(session: Session, caller: Principal, r: domain.Rule) -> int:
    domain.check_rule(r.category_prefix, r.grid_code, r.ack_minutes, r.resolve_minutes, r.priority)
    if store.department(session, r.department_code) is None:
        raise NotFound(f"no department {r.department_code}")
    store.lock_rules(session)
    tie = domain.tie_with(r, store.active_rules(session))
    if tie is not None:
        raise FailedPrecondition(
            f"this rule would tie with rule {tie.id} (category {tie.category_prefix or 'any'}, grid "
            f"{tie.grid_code or 'anywhere'}, priority {tie.priority}, to {tie.department_code}); "
            "give one of them another priority to say which wins")
    return store.insert_rule(session, r, caller.member_id)


def create_rule(caller: Principal, *, category_prefix: str, grid_code: str, department_code: str, priority: int,
                ack_minutes: int, resolve_minutes: int, working_time: bool) -> domain.Rule:
    domain.may_configure(caller)
    with session_scope() as session:
        rule_id = _create_rule(session, caller, domain.Rule(0, category_prefix, grid_code, department_code, priority,
                                                            ack_minutes, resolve_minutes, working_time))
        return store.rule(session, rule_id)


def deactivate_rule(caller: Principal, rule_id: int) -> None:
    domain.may_configure(caller)
    with session_scope() as session:
        if not store.deactivate_rule(session, rule_id):
            raise NotFound(f"no active rule {rule_id}")


def list_rules(caller: Principal) -> list[domain.Rule]:
    auth.require_role(caller, auth.ADMIN, auth.SERVICE, auth.DISPATCHER)
    with session_scope() as session:
        return store.active_rules(session)


def load_config(caller: Principal, doc: dict) -> tuple[int, int]:
    """The operator's file: departments upserted, and the active rules replaced by the file's,
    all or nothing. Returns (departments, rules)."""
    domain.may_configure(caller)
    if not isinstance(doc, dict):
        raise InvalidArgument("the dispatch file must be a mapping with departments and rules")
    departments, rules = doc.get("departments") or [], doc.get("rules") or []
    with session_scope() as session:
        for i, d in enumerate(departments):
            try:
                code, name, serves = d["code"], d["name"], d["serves"]
            except (KeyError, TypeError):
                raise InvalidArgument(f"department {i}: code, name and serves are required")
            domain.check_code(code, f"department {i} code")
            store.upsert_department(session, code, name, sorted(set(serves)), d.get("contact", ""))
        store.lock_rules(session)
        session.execute(text("UPDATE dispatch.rules SET active = false WHERE active"))
        for i, r in enumerate(rules):
            try:
                rule = domain.Rule(0, str(r.get("category", "")), str(r.get("grid", "")), r["department"],
                                   int(r.get("priority", 0)), int(r["ack_minutes"]), int(r["resolve_minutes"]),
                                   bool(r.get("working_time", False)))
            except (KeyError, TypeError, ValueError):
                raise InvalidArgument(f"rule {i}: department, ack_minutes and resolve_minutes are required")
            try:
                _create_rule(session, caller, rule)
            except (InvalidArgument, FailedPrecondition, NotFound) as exc:
                raise type(exc)(f"rule {i}: {exc.message}")
        return len(departments), len(rules)


# --- taking incidents in -------------------------------------------------------------------

def _routed_values(session: Session, category: str, lineage: list[str], now: datetime) -> dict:
    rule = domain.route(store.active_rules(session), category, lineage, _serves(session))
    if rule is None:
        return {"status": domain.QUEUED, "department_code": None, "rule_id": None, "dispatched_at": None,
                "ack_due_at": None, "resolve_due_at": None}
    return {"status": domain.ASSIGNED, "department_code": rule.department_code, "rule_id": rule.id,
            "dispatched_at": now, "ack_due_at": due(now, rule.ack_minutes, rule.working_time),
            "resolve_due_at": due(now, rule.resolve_minutes, rule.working_time)}


def _schedule(session: Session, task_id: uuid.UUID, values: dict, now: datetime) -> None:
    if values["status"] == domain.QUEUED:
        store.add_deadline(session, task_id, domain.ASSIGN, now + timedelta(minutes=assign_minutes()))
    else:
        store.add_deadline(session, task_id, domain.ACK, values["ack_due_at"])
        store.add_deadline(session, task_id, domain.RESOLVE, values["resolve_due_at"])


def on_incident_reported(event: dict) -> str:
    """One task per incident: routed to a department, or to its district's manual queue."""
    data = event["data"]
    now = datetime.now(timezone.utc)
    with session_scope() as session:
        if not first_delivery(session, SCHEMA, "dispatch.on_incident_reported", event):
            return "duplicate event"
        lineage = list(data["lineage"])
        values = _routed_values(session, data["category"], lineage, now)
        task_id = uuid.uuid4()
        if not store.insert_task(session, {**values, "id": task_id, "incident_id": data["incident_id"],
                                           "category": data["category"], "priority": data.get("priority") or 4,
                                           "grid_code": data["grid_code"], "lineage": lineage}):
            return "task exists"
        _schedule(session, task_id, values, now)
        store.history(session, task_id, "create", None, values["status"], values["department_code"],
                      SYSTEM.member_id, SYSTEM.role, "routed by rule" if values["rule_id"] else "manual queue")
        t = _view(store.task(session, task_id))
        _event(session, "created", t, (SYSTEM.member_id, SYSTEM.role))
        failpoints.hit("dispatch.before_commit")
        return "routed" if values["rule_id"] else "manual queue"


_INCIDENT_TO_TASK = {
    "incidents.incident.reopened": "reopen", "incidents.incident.closed": "close",
    "incidents.incident.rejected": "incident rejected", "incidents.incident.merged": "incident merged",
    "incidents.incident.resubmitted": "resubmit", "incidents.incident.dispatched": "sync",
    "incidents.incident.rerouted": "sync",
}


def on_incident_changed(event: dict) -> str:
    """Keeps the task in step with its incident (closure, rework, resubmission, direct moves)."""
    action = _INCIDENT_TO_TASK.get(event["type"])
    if action is None:
        return "ignored"
    data = event["data"]
    now = datetime.now(timezone.utc)
    who = data.get("actor") or {}
    actor = (str(who.get("id", "incidents")), str(who.get("role", "service")))
    if action == "sync" and actor[0] == SYSTEM.member_id:
        return "in step"  # the echo of this service's own dispatch: nothing to read or write
    with session_scope() as session:
        if not first_delivery(session, SCHEMA, "dispatch.on_incident_changed", event):
            return "duplicate event"
        row = store.task_of_incident(session, data["incident_id"], for_update=True)
        if row is None:
            return "no task"
        t = _view(row)
        tid = _task_id(t.id)
        if action == "sync":  # a dispatcher moved the incident in the incidents service directly
            if data.get("department_code") in (None, t.department_code):
                return "in step"
            values = {"department_code": data["department_code"], "status": domain.ASSIGNED,
                      "dispatched_at": t.dispatched_at or now}
            if t.status == domain.QUEUED:  # out of the manual queue: its deadlines become the department's
                values.update(ack_due_at=now + timedelta(minutes=DEFAULT_ACK_MINUTES),
                              resolve_due_at=now + timedelta(minutes=DEFAULT_RESOLVE_MINUTES))
                store.cancel_deadlines(session, tid, (domain.ASSIGN,))
                _schedule(session, tid, values, now)
            kind = None
        elif action == "close":
            values, kind = {"status": domain.CLOSED, "closed_at": now}, "closed"
            store.cancel_deadlines(session, tid, domain.DEADLINE_KINDS)
        elif action in ("incident rejected", "incident merged"):
            values = {"status": domain.REJECTED if action == "incident rejected" else domain.MERGED}
            kind = None
            store.cancel_deadlines(session, tid, domain.DEADLINE_KINDS)
        elif action == "reopen":
            rule = store.rule(session, t.rule_id) if t.rule_id else None
            ack = rule.ack_minutes if rule else DEFAULT_ACK_MINUTES
            res = rule.resolve_minutes if rule else DEFAULT_RESOLVE_MINUTES
            working = rule.working_time if rule else False
            values = {"status": domain.ASSIGNED, "reopened": t.reopened + 1, "acknowledged_at": None,
                      "resolved_at": None, "ack_due_at": due(now, ack, working), "resolve_due_at": due(now, res, working)}
            store.cancel_deadlines(session, tid, domain.DEADLINE_KINDS)
            store.add_deadline(session, tid, domain.ACK, values["ack_due_at"])
            store.add_deadline(session, tid, domain.RESOLVE, values["resolve_due_at"])
            kind = "reopened"
        else:  # resubmit: route again, as a new report would be
            values = _routed_values(session, t.category, t.lineage, now)
            store.cancel_deadlines(session, tid, domain.DEADLINE_KINDS)
            _schedule(session, tid, values, now)
            kind = "assigned" if values["department_code"] else None
        if store.update_task(session, tid, t.version, values) is None:
            raise Aborted("task changed concurrently; the event will be retried")
        store.history(session, tid, action, t.status, values.get("status", t.status),
                      values.get("department_code", t.department_code), actor[0], actor[1], data.get("note"))
        if kind:
            _event(session, kind, _view(store.task(session, tid)), (SYSTEM.member_id, SYSTEM.role))
        return action


# --- people acting on tasks ----------------------------------------------------------------

def _act(caller: Principal, task_id: str, expected_version: int, check, change, kind: str | None,
         action: str, note: str | None = None, extra=lambda before: {}) -> TaskView:
    """Loads, checks (`check(task)`), changes (`change(session, task) -> values`), then records
    history and the event (`extra(task before)` adds to its data), in one transaction at the
    version the caller saw."""
    tid = _task_id(task_id)
    if expected_version <= 0 and caller.role != auth.SERVICE:
        raise InvalidArgument("expected_version is required: the version you last read")
    with session_scope() as session:
        row = store.task(session, tid, for_update=True)
        if row is None:
            raise NotFound(f"no task {task_id}")
        t = _view(row)
        check(t)
        if expected_version and t.version != expected_version:
            raise Aborted(f"task {task_id} changed: it is at version {t.version} ({t.status}), not "
                          f"{expected_version}; re-read and retry")
        values = change(session, t)
        if store.update_task(session, tid, t.version, values) is None:
            raise Aborted(f"task {task_id} changed while you acted on it; re-read and retry")
        store.history(session, tid, action, t.status, values.get("status", t.status),
                      values.get("department_code", t.department_code), caller.member_id, caller.role, note)
        after = _view(store.task(session, tid))
        if kind:
            _event(session, kind, after, (caller.member_id, caller.role), **extra(t))
        return after


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
    """A dispatcher sends a task from the manual queue (or a rejected one) to a department."""
    def check(t):
        domain.may_dispatch(caller, t.lineage)
        domain.require_status(t.status, {domain.QUEUED}, "assign")

    def change(session, t):
        _department(session, department_code, t.lineage)
        now = datetime.now(timezone.utc)
        values = {"status": domain.ASSIGNED, "department_code": department_code, "dispatched_at": now,
                  "ack_due_at": now + timedelta(minutes=DEFAULT_ACK_MINUTES),
                  "resolve_due_at": now + timedelta(minutes=DEFAULT_RESOLVE_MINUTES)}
        tid = _task_id(t.id)
        store.cancel_deadlines(session, tid, (domain.ASSIGN,))
        _schedule(session, tid, values, now)
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
        now = datetime.now(timezone.utc)
        tid = _task_id(t.id)
        store.cancel_deadlines(session, tid, (domain.ACK,))
        ack_due = now + timedelta(minutes=DEFAULT_ACK_MINUTES)
        store.add_deadline(session, tid, domain.ACK, ack_due)
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
        store.cancel_deadlines(session, _task_id(t.id), domain.DEADLINE_KINDS)
        return {"status": domain.REJECTED}
    return _act(caller, task_id, expected_version, check, change, "rejected", "reject", note,
                lambda before: {"reason": note})


def merge(caller: Principal, task_id: str, into_incident_id: str, expected_version: int) -> TaskView:
    def check(t):
        domain.may_dispatch(caller, t.lineage)
        domain.require_status(t.status, set(domain.OPEN), "merge")
        try:
            target = str(uuid.UUID(into_incident_id))
        except (ValueError, TypeError):
            raise InvalidArgument(f"into_incident_id {into_incident_id!r} is not a UUID")
        if target == t.incident_id:
            raise InvalidArgument("an incident cannot be merged into itself")

    def change(session, t):
        store.cancel_deadlines(session, _task_id(t.id), domain.DEADLINE_KINDS)
        return {"status": domain.MERGED}
    return _act(caller, task_id, expected_version, check, change, "merged", "merge",
                f"duplicate of {into_incident_id}", lambda before: {"into_incident_id": into_incident_id})


def acknowledge(caller: Principal, task_id: str, expected_version: int) -> TaskView:
    def check(t):
        domain.may_handle(caller, t.department_code)
        domain.require_status(t.status, {domain.ASSIGNED}, "acknowledge")

    def change(session, t):
        store.cancel_deadlines(session, _task_id(t.id), (domain.ACK,))
        return {"status": domain.ACKNOWLEDGED, "acknowledged_at": datetime.now(timezone.utc)}
    return _act(caller, task_id, expected_version, check, change, "acknowledged", "acknowledge")


def report_progress(caller: Principal, task_id: str, note: str) -> TaskView:
    text_ = _note(note, "progress note")
    # A progress report changes no state, so it takes no expected version: any number may come in.
    tid = _task_id(task_id)
    with session_scope() as session:
        row = store.task(session, tid)
        if row is None:
            raise NotFound(f"no task {task_id}")
        t = _view(row)
        domain.may_handle(caller, t.department_code)
        domain.require_status(t.status, {domain.ACKNOWLEDGED}, "report progress on")
        store.update_task(session, tid, t.version, {})  # still numbers the event
        store.history(session, tid, "progress", t.status, t.status, t.department_code, caller.member_id,
                      caller.role, text_)
        after = _view(store.task(session, tid))
        _event(session, "progress", after, (caller.member_id, caller.role), note=text_)
        return after


def resolve(caller: Principal, task_id: str, resolution: str, expected_version: int) -> TaskView:
    note = _note(resolution, "resolution")

    def check(t):
        domain.may_handle(caller, t.department_code)
        domain.require_status(t.status, {domain.ACKNOWLEDGED}, "resolve")

    def change(session, t):
        store.cancel_deadlines(session, _task_id(t.id), (domain.ACK, domain.RESOLVE))
        return {"status": domain.RESOLVED, "resolved_at": datetime.now(timezone.utc)}
    return _act(caller, task_id, expected_version, check, change, "resolved", "resolve", note,
                lambda before: {"resolution": note})


# --- reading -------------------------------------------------------------------------------

def get_task(caller: Principal, task_id: str) -> TaskView:
    with session_scope() as session:
        row = store.task(session, _task_id(task_id))
        if row is None:
            raise NotFound(f"no task {task_id}")
        t = _view(row)
        domain.may_read(caller, t.lineage, t.department_code)
        t.history = store.task_history(session, _task_id(task_id))
        return t


def task_of_incident(caller: Principal, incident_id: str) -> TaskView:
    with session_scope() as session:
        row = store.task_of_incident(session, incident_id)
        if row is None:
            raise NotFound(f"no task for incident {incident_id}")
        t = _view(row)
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
    if caller.role == auth.DEPARTMENT:
        if department_code and department_code != caller.member_id:
            raise InvalidArgument("a department sees its own queue")
        department_code = caller.member_id
    else:
        auth.require_role(caller, auth.DISPATCHER, auth.ADMIN, auth.SERVICE)
        if unit_code:
            domain.may_dispatch(caller, _lineage_of(unit_code))
        elif caller.role != auth.SERVICE:
            scope = caller.scope
    with session_scope() as session:
        rows = store.queue(session, unit_code=unit_code or None, scope=scope, department=department_code or None,
                           statuses=list(statuses or []), escalated_only=escalated_only, limit=limit)
        return [_view(r) for r in rows]


def _lineage_of(code: str) -> list[str]:
    """A unit's lineage from its code (the codes nest), for scope checks without a query."""
    depth = domain.unit_depth(code)
    if depth == 0:
        raise InvalidArgument(f"{code!r} is not a unit code")
    city = code[:4] + "00"
    parts = [city, code[:6], code[:9], code[:12], code[:15]]
    return parts[:depth] if depth > 1 else [city]


# --- deadlines -----------------------------------------------------------------------------

def fire_due_deadlines(now: datetime | None = None, limit: int = 100) -> int:
    """Escalates every missed deadline once, up the task's grid lineage. Safe to run from
    several replicas (SKIP LOCKED) and after any restart (deadlines are rows, not timers)."""
    now = now or datetime.now(timezone.utc)
    fired = 0
    with session_scope() as session:
        for d in store.claim_due(session, now, limit):
            store.mark_fired(session, d.id)
            row = store.task(session, d.task_id, for_update=True)
            t = _view(row)
            if t.status not in domain.OPEN:
                continue
            level = d.level + 1
            unit = domain.escalation_unit(t.lineage, level)
            values = {"escalation_level": max(t.escalation_level, level), "escalated_to": unit}
            if store.update_task(session, d.task_id, t.version, values) is None:
                raise Aborted("task changed concurrently")
            if level < len(domain.LEVELS) - 1:  # the city is the last level to tell
                store.add_deadline(session, d.task_id, d.kind, now + timedelta(minutes=escalation_minutes()), level)
            note = f"{d.kind} deadline {_iso(d.due_at)} missed; escalated to {domain.level_name(t.lineage, level)} {unit}"
            store.history(session, d.task_id, "escalate", t.status, t.status, t.department_code,
                          SYSTEM.member_id, SYSTEM.role, note)
            after = _view(store.task(session, d.task_id))
            _event(session, "escalated", after, (SYSTEM.member_id, SYSTEM.role), deadline_kind=d.kind,
                   level=level, level_name=domain.level_name(t.lineage, level), unit_code=unit, missed_due_at=d.due_at)
            fired += 1
    return fired


# --- evaluation ----------------------------------------------------------------------------

GROUPINGS = ("department", "district", "street", "community", "grid")


def evaluation(caller: Principal, start: datetime, end: datetime, *, group_by: str = "department",
               unit_code: str = "", department_code: str = "") -> list[tuple[str, dict]]:
    """Digital urban management figures per department or per unit, over tasks dispatched in
    [start, end): dispatched, acknowledged and resolved on time, closure and on-time closure
    rates, rework rate, mean hours to resolve. The last row, key "all", is the total."""
    if group_by not in GROUPINGS:
        raise InvalidArgument(f"group_by must be one of {', '.join(GROUPINGS)}")
    if start >= end:
        raise InvalidArgument("start must be before end")
    if caller.role == auth.DEPARTMENT:
        department_code = caller.member_id
    else:
        auth.require_role(caller, auth.DISPATCHER, auth.ADMIN, auth.SERVICE)
        if caller.role == auth.DISPATCHER and not unit_code:
            raise InvalidArgument("a dispatcher asks for a unit in their scope (unit_code)")
        if unit_code:
            domain.may_dispatch(caller, _lineage_of(unit_code))
    index = GROUPINGS.index(group_by)  # district is lineage[1], street [2], ...
    groups: dict[str, domain.Figures] = {}
    total = domain.Figures()
    with session_scope() as session:
        for row in store.tasks_dispatched_between(session, start, end, unit_code or None, department_code or None):
            facts = domain.TaskFacts(row.dispatched_at, row.ack_due_at, row.acknowledged_at, row.resolve_due_at,
                                     row.resolved_at, row.closed_at, row.reopened)
            key = row.department_code if index == 0 else (row.lineage[index] if len(row.lineage) > index else "-")
            groups.setdefault(key or "-", domain.Figures()).add(facts)
            total.add(facts)
    return [(k, groups[k].rates()) for k in sorted(groups)] + [("all", total.rates())]


def health() -> dict:
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    return {"status": "SERVING"}
