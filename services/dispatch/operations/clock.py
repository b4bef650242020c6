"""The deadline clock's pauses: holding it (a request waits, the case is parked) and letting
it run again, with the deadlines moved by the working time it stood still
(services/dispatch/procedures.py says how). Each pause and resume is a history row and an
event, in the caller's transaction."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from services.dispatch import domain, procedures, store
from services.dispatch.operations.changes import TaskView, calendar, save
from shared.config import settings
from shared.timefmt import iso_utc


def hold(session: Session, t: TaskView, hold_: str, now: datetime, actor: tuple[str, str], why: str) -> TaskView:
    """Stops the clock for `hold_` (the first hold stops it; another one only adds its reason)."""
    if hold_ in t.holds:
        return t
    values = {"holds": procedures.with_hold(t.holds, hold_)}
    if t.holds:
        return save(session, t, values, action="pause", actor=actor,
                    note=f"{why}; the clock was already paused ({', '.join(t.holds)})")
    values["paused_at"] = now
    # The deadlines wait with the clock; release() schedules them again, moved.
    store.cancel_deadlines(session, t.key, (domain.ACK, domain.RESOLVE))
    return save(session, t, values, action="pause", actor=actor, note=f"clock paused: {why}",
                event="paused", event_data={"reason": why})


def release(session: Session, t: TaskView, hold_: str, now: datetime, actor: tuple[str, str], why: str) -> TaskView:
    """Lifts `hold_`; when it was the last one the clock runs again and every deadline not yet
    met moves later by the working time it stood still."""
    if hold_ not in t.holds:
        return t
    holds = procedures.without_hold(t.holds, hold_)
    if holds:
        return save(session, t, {"holds": holds}, action="resume", actor=actor,
                    note=f"{why}; the clock stays paused ({', '.join(holds)})")
    cal = calendar()
    paused = cal.between(t.paused_at, now)
    values = {"holds": [], "paused_at": None, "paused_minutes": t.paused_minutes + procedures.minutes_of(paused)}
    moved = []
    for field, kind, met, waits in (("ack_due_at", domain.ACK, t.acknowledged_at, {domain.ASSIGNED}),
                                    ("resolve_due_at", domain.RESOLVE, t.resolved_at,
                                     {domain.ASSIGNED, domain.ACKNOWLEDGED})):
        due = getattr(t, field)
        if due is None or met:
            continue
        new = procedures.moved_due(due, t.paused_at, paused, cal)
        values[field] = new
        if new != due:
            moved.append(f"{kind} due {iso_utc(new)}")
        if t.status in waits:
            _reschedule(session, t, kind, due, new, now)
    note = (f"clock resumed ({why}) after {procedures.describe(paused)} of working time paused since "
            f"{iso_utc(t.paused_at)}" + (f"; {', '.join(moved)}" if moved else ""))
    return save(session, t, values, action="resume", actor=actor, note=note, event="resumed",
                event_data={"reason": why, "paused_minutes": procedures.minutes_of(paused)})


def _reschedule(session: Session, t: TaskView, kind: str, due: datetime, new: datetime, now: datetime) -> None:
    if new > t.paused_at:
        store.add_deadline(session, t.key, kind, new)
    elif t.escalation_level < len(domain.LEVELS) - 1:
        # Missed before the pause, and escalated: the next level is told as it would have been.
        store.add_deadline(session, t.key, kind, now + timedelta(minutes=settings().dispatch_escalation_minutes),
                           t.escalation_level)
