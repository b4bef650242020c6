"""dispatch storage: departments, rules, tasks, durable deadlines and task history (SQL)."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.dispatch import domain

SCHEMA = "dispatch"
TASK_COLUMNS = ("id, incident_id, status, department_code, rule_id, category, priority, grid_code, lineage, "
                "dispatched_at, ack_due_at, acknowledged_at, resolve_due_at, resolved_at, closed_at, reopened, "
                "escalation_level, escalated_to, version, created_at, pending, pending_by, pending_minutes, holds, "
                "paused_at, paused_minutes, extended_minutes, returned, supervised, lead_task_id")
NEXT_DUE = ("(SELECT min(due_at) FROM dispatch.deadlines d WHERE d.task_id = t.id "
            "AND d.fired_at IS NULL AND d.cancelled_at IS NULL) AS next_due_at")


# --- departments and rules -----------------------------------------------------------------

def upsert_department(session: Session, code: str, name: str, serves: list[str], contact: str) -> None:
    session.execute(text(
        "INSERT INTO dispatch.departments (code, name, serves, contact) VALUES (:c, :n, :s, :ct) "
        "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, serves = EXCLUDED.serves, "
        "contact = EXCLUDED.contact, active = true, updated_at = now()"),
        {"c": code, "n": name, "s": serves, "ct": contact})


def departments(session: Session) -> list:
    return session.execute(text("SELECT code, name, serves, contact, active FROM dispatch.departments "
                                "ORDER BY code")).all()


def department(session: Session, code: str):
    return session.execute(text("SELECT code, name, serves, contact, active FROM dispatch.departments "
                                "WHERE code = :c"), {"c": code}).first()


def _rule(row) -> domain.Rule:
    return domain.Rule(row.id, row.category_prefix, row.grid_code, row.department_code, row.priority,
                       row.ack_minutes, row.resolve_minutes, row.working_time)


def active_rules(session: Session) -> list[domain.Rule]:
    return [_rule(r) for r in session.execute(text(
        "SELECT * FROM dispatch.rules WHERE active ORDER BY id")).all()]


def rule(session: Session, rule_id: int) -> domain.Rule | None:
    row = session.execute(text("SELECT * FROM dispatch.rules WHERE id = :i"), {"i": rule_id}).first()
    return _rule(row) if row else None


def insert_rule(session: Session, r: domain.Rule, by: str) -> int:
    return session.execute(text(
        "INSERT INTO dispatch.rules (category_prefix, grid_code, department_code, priority, ack_minutes, "
        "resolve_minutes, working_time, created_by) VALUES (:c, :g, :d, :p, :a, :r, :w, :b) RETURNING id"),
        {"c": r.category_prefix, "g": r.grid_code, "d": r.department_code, "p": r.priority, "a": r.ack_minutes,
         "r": r.resolve_minutes, "w": r.working_time, "b": by}).scalar_one()


def deactivate_rule(session: Session, rule_id: int) -> bool:
    return session.execute(text("UPDATE dispatch.rules SET active = false WHERE id = :i AND active"),
                           {"i": rule_id}).rowcount > 0


def lock_rules(session: Session) -> None:
    """Rule writers take turns, so two cannot both pass the tie check."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridbus.dispatch.rules'))"))


# --- tasks ---------------------------------------------------------------------------------

def insert_task(session: Session, values: dict) -> bool:
    """False when the incident already has its task (a redelivered or replayed event)."""
    row = session.execute(text(
        "INSERT INTO dispatch.tasks (id, incident_id, status, department_code, rule_id, category, priority, "
        "grid_code, lineage, dispatched_at, ack_due_at, resolve_due_at, lead_task_id) VALUES (:id, :incident_id, "
        ":status, :department_code, :rule_id, :category, :priority, :grid_code, :lineage, :dispatched_at, "
        ":ack_due_at, :resolve_due_at, :lead_task_id) ON CONFLICT DO NOTHING RETURNING id"),
        {"lead_task_id": None, **values}).first()
    return row is not None


def claim_and_create_task(session: Session, consumer: str, event: dict, values: dict, history: tuple,
                          deadlines: list[tuple[str, datetime]]):
    """One statement for a reported incident: claims the event in the inbox and, only when it
    was not claimed before, inserts the task, its history row (action, actor id, actor role,
    note) and its deadlines. Returns (claimed, the task's row or None when it already exists)."""
    row = session.execute(text(
        "WITH claim AS (INSERT INTO dispatch.inbox (consumer, event_id, event_type) "
        "  VALUES (:consumer, CAST(:event_id AS uuid), :event_type) ON CONFLICT DO NOTHING RETURNING event_id), "
        "task AS (INSERT INTO dispatch.tasks (id, incident_id, status, department_code, rule_id, category, priority, "
        "  grid_code, lineage, dispatched_at, ack_due_at, resolve_due_at) "
        "  SELECT CAST(:id AS uuid), CAST(:incident_id AS uuid), :status, :department_code, CAST(:rule_id AS bigint), "
        "  :category, CAST(:priority AS smallint), :grid_code, CAST(:lineage AS text[]), "
        "  CAST(:dispatched_at AS timestamptz), CAST(:ack_due_at AS timestamptz), "
        "  CAST(:resolve_due_at AS timestamptz) FROM claim "
        f"  ON CONFLICT DO NOTHING RETURNING {TASK_COLUMNS}), "
        "history AS (INSERT INTO dispatch.task_history (task_id, action, from_status, to_status, department_code, "
        "  actor_id, actor_role, note) SELECT id, :action, NULL, status, department_code, :actor_id, :actor_role, "
        "  :note FROM task), "
        "deadlines AS (INSERT INTO dispatch.deadlines (task_id, kind, level, due_at) "
        "  SELECT task.id, d.kind, 0, d.due_at FROM task, "
        "  unnest(CAST(:kinds AS text[]), CAST(:dues AS timestamptz[])) AS d (kind, due_at)) "
        "SELECT EXISTS (SELECT FROM claim) AS claimed, task.* FROM (VALUES (1)) AS one (x) LEFT JOIN task ON true"),
        {**values, "consumer": consumer, "event_id": event["id"], "event_type": event["type"],
         "action": history[0], "actor_id": history[1], "actor_role": history[2], "note": history[3],
         "kinds": [k for k, _ in deadlines], "dues": [d for _, d in deadlines]}).one()
    return row.claimed, (row if row.id is not None else None)


def task(session: Session, task_id: uuid.UUID, *, for_update: bool = False):
    lock = " FOR UPDATE OF t" if for_update else ""
    return session.execute(text(f"SELECT {TASK_COLUMNS}, {NEXT_DUE} FROM dispatch.tasks t WHERE id = :i{lock}"),
                           {"i": task_id}).first()


def task_of_incident(session: Session, incident_id: str, *, for_update: bool = False):
    lock = " FOR UPDATE OF t" if for_update else ""
    return session.execute(text(f"SELECT {TASK_COLUMNS}, {NEXT_DUE} FROM dispatch.tasks t "
                                f"WHERE incident_id = :i AND lead_task_id IS NULL{lock}"), {"i": incident_id}).first()


def claim_and_lock_task_of_incident(session: Session, consumer: str, event: dict, incident_id: str):
    """One statement: the inbox claim (shared/inbox.py) and task_of_incident(for_update=True).
    Returns (claimed, the locked row or None when the incident has no task)."""
    row = session.execute(text(
        "WITH claim AS (INSERT INTO dispatch.inbox (consumer, event_id, event_type) "
        "  VALUES (:consumer, CAST(:event_id AS uuid), :event_type) ON CONFLICT DO NOTHING RETURNING event_id) "
        "SELECT EXISTS (SELECT FROM claim) AS claimed, task.* FROM (VALUES (1)) AS one (x) LEFT JOIN LATERAL "
        f"(SELECT {TASK_COLUMNS}, {NEXT_DUE} FROM dispatch.tasks t "
        "  WHERE incident_id = CAST(:i AS uuid) AND lead_task_id IS NULL FOR UPDATE OF t) AS task ON true"),
        {"consumer": consumer, "event_id": event["id"], "event_type": event["type"], "i": incident_id}).one()
    return row.claimed, (row if row.id is not None else None)


def returned_by(session: Session, task_id: uuid.UUID) -> list[str]:
    return list(session.execute(text("SELECT returned_by FROM dispatch.tasks WHERE id = :t"),
                                {"t": task_id}).scalar_one())


def assists(session: Session, lead_task_id: uuid.UUID, *, for_update: bool = False) -> list:
    """The lead task's assisting tasks, oldest first."""
    lock = " FOR UPDATE OF t" if for_update else ""
    return session.execute(text(f"SELECT {TASK_COLUMNS}, {NEXT_DUE} FROM dispatch.tasks t "
                                f"WHERE lead_task_id = :l ORDER BY created_at{lock}"), {"l": lead_task_id}).all()


def update_task(session: Session, task_id: uuid.UUID, expected_version: int, values: dict) -> int | None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    row = session.execute(text(
        f"UPDATE dispatch.tasks SET {sets}{', ' if sets else ''}version = version + 1, updated_at = clock_timestamp() "
        "WHERE id = :task_id AND version = :expected RETURNING version"),
        {**values, "task_id": task_id, "expected": expected_version}).first()
    return row.version if row else None


def history(session: Session, task_id: uuid.UUID, action: str, from_status: str | None, to_status: str,
            department: str | None, actor_id: str, actor_role: str, note: str | None) -> None:
    session.execute(text(
        "INSERT INTO dispatch.task_history (task_id, action, from_status, to_status, department_code, actor_id, "
        "actor_role, note) VALUES (:t, :a, :f, :s, :d, :ai, :ar, :n)"),
        {"t": task_id, "a": action, "f": from_status, "s": to_status, "d": department, "ai": actor_id,
         "ar": actor_role, "n": note})


def task_history(session: Session, task_id: uuid.UUID) -> list:
    return session.execute(text("SELECT action, from_status, to_status, department_code, actor_id, actor_role, "
                                "note, at FROM dispatch.task_history WHERE task_id = :t ORDER BY id"),
                           {"t": task_id}).all()


def queue(session: Session, *, unit_code: str | None, scope: tuple[str, ...] | None, department: str | None,
          statuses: list[str], escalated_only: bool, limit: int) -> list:
    conds, params = [], {"n": limit}
    if unit_code:
        conds.append(":unit = ANY(lineage)")
        params["unit"] = unit_code
    if scope is not None:
        conds.append("lineage && CAST(:scope AS text[])")
        params["scope"] = list(scope)
    if department is not None:
        conds.append("department_code = :dept")
        params["dept"] = department
    conds.append("status = ANY(:statuses)")
    params["statuses"] = statuses or sorted(domain.OPEN)
    if escalated_only:
        conds.append("escalation_level > 0")
    return session.execute(text(
        f"SELECT * FROM (SELECT {TASK_COLUMNS}, {NEXT_DUE} FROM dispatch.tasks t WHERE {' AND '.join(conds)}) q "
        "ORDER BY next_due_at ASC NULLS LAST, priority, created_at LIMIT :n"), params).all()


# --- deadlines -----------------------------------------------------------------------------

def add_deadline(session: Session, task_id: uuid.UUID, kind: str, due_at: datetime, level: int = 0) -> None:
    session.execute(text("INSERT INTO dispatch.deadlines (task_id, kind, level, due_at) VALUES (:t, :k, :l, :d)"),
                    {"t": task_id, "k": kind, "l": level, "d": due_at})


def cancel_deadlines(session: Session, task_id: uuid.UUID, kinds: tuple[str, ...]) -> None:
    session.execute(text("UPDATE dispatch.deadlines SET cancelled_at = clock_timestamp() WHERE task_id = :t "
                         "AND kind = ANY(:k) AND fired_at IS NULL AND cancelled_at IS NULL"),
                    {"t": task_id, "k": list(kinds)})


def claim_due(session: Session, now: datetime, limit: int) -> list:
    """Due deadlines, locked so that another scheduler replica skips them."""
    return session.execute(text(
        "SELECT id, task_id, kind, level, due_at FROM dispatch.deadlines "
        "WHERE fired_at IS NULL AND cancelled_at IS NULL AND due_at <= :now "
        "ORDER BY due_at LIMIT :n FOR UPDATE SKIP LOCKED"), {"now": now, "n": limit}).all()


def mark_fired(session: Session, deadline_id: int) -> None:
    session.execute(text("UPDATE dispatch.deadlines SET fired_at = clock_timestamp() WHERE id = :i"),
                    {"i": deadline_id})


# --- evaluation ----------------------------------------------------------------------------

def tasks_dispatched_between(session: Session, start: datetime, end: datetime, unit_code: str | None,
                             department: str | None) -> list:
    conds, params = ["dispatched_at >= :s", "dispatched_at < :e"], {"s": start, "e": end}
    if unit_code:
        conds.append(":u = ANY(lineage)")
        params["u"] = unit_code
    if department:
        conds.append("department_code = :d")
        params["d"] = department
    if department:  # the tasks it holds, and those it returned
        conds[-1] = "(department_code = :d OR :d = ANY(returned_by))"
    return session.execute(text(
        "SELECT department_code, lineage, dispatched_at, ack_due_at, acknowledged_at, resolve_due_at, "
        "resolved_at, closed_at, reopened, status, returned, returned_by, paused_minutes, extended_minutes, "
        f"supervised, lead_task_id FROM dispatch.tasks WHERE {' AND '.join(conds)}"), params).all()
