"""Missed deadlines escalate up the task's grid lineage."""
from __future__ import annotations

from datetime import datetime, timedelta

from services.dispatch import domain, store
from services.dispatch.operations.changes import SYSTEM_ACTOR, save, task_view
from shared.config import settings
from shared.db import session_scope
from shared.timefmt import iso_utc, utcnow


def fire_due_deadlines(now: datetime | None = None, limit: int = 100) -> int:
    """Escalates every missed deadline once, up the task's grid lineage, and tells incidents a
    parked case's review date has come (dispatch.task.review_due). Safe to run from
    several replicas (SKIP LOCKED) and after any restart (deadlines are rows, not timers)."""
    now = now or utcnow()
    escalation_minutes = settings().dispatch_escalation_minutes
    fired = 0
    with session_scope() as session:
        for d in store.claim_due(session, now, limit):
            store.mark_fired(session, d.id)
            t = task_view(store.task(session, d.task_id, for_update=True))
            if d.kind == domain.REVIEW:
                if t.status == domain.PARKED:  # incidents brings the case back (its unpark)
                    save(session, t, {}, action="review due", actor=SYSTEM_ACTOR,
                         note=f"review date {iso_utc(d.due_at)} reached", event="review_due",
                         event_data={"review_at": d.due_at, "note": "review date reached"})
                    fired += 1
                continue
            if t.status not in domain.OPEN:
                continue
            level = d.level + 1
            unit = domain.escalation_unit(t.lineage, level)
            name = domain.level_name(t.lineage, level)
            if level < len(domain.LEVELS) - 1:  # the city is the last level to tell; each level has this long
                store.add_deadline(session, d.task_id, d.kind, now + timedelta(minutes=escalation_minutes), level)
            save(session, t, {"escalation_level": max(t.escalation_level, level), "escalated_to": unit},
                 action="escalate", actor=SYSTEM_ACTOR,
                 note=f"{d.kind} deadline {iso_utc(d.due_at)} missed; escalated to {name} {unit}",
                 event="escalated", event_data={"deadline_kind": d.kind, "level": level, "level_name": name,
                                                "unit_code": unit, "missed_due_at": d.due_at})
            fired += 1
    return fired
