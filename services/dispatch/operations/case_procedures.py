"""The task following its incident's side procedures (incidents owns them: void, park,
supervise): the clock stops while a void or park request waits and while the case is parked,
a parked task leaves the queues until its review date (a timer row, as deadlines are), and a
supervised task goes to priority 1 with its department and their superior told."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from services.dispatch import domain, procedures, store
from services.dispatch.operations.changes import SYSTEM_ACTOR, TaskView, save
from services.dispatch.operations.clock import hold, release
from shared.timefmt import parse_iso


def _why(event: dict) -> str:
    return event["type"].rsplit(".", 1)[1].replace("_", " ")  # "void requested"


def _case_clock(session: Session, t: TaskView, event: dict, now: datetime, actor: tuple[str, str]) -> None:
    """incidents says whether the case's clock stands still (its events' clock_paused)."""
    if event["data"].get("clock_paused"):
        hold(session, t, procedures.CASE_HOLD, now, actor, _why(event))
    else:
        release(session, t, procedures.CASE_HOLD, now, actor, _why(event))


def _park(session: Session, t: TaskView, event: dict, now: datetime, actor: tuple[str, str]) -> None:
    data = event["data"]
    review_at = parse_iso(data.get("review_at"), "review_at")
    t = hold(session, t, procedures.CASE_HOLD, now, actor, "parked")
    store.cancel_deadlines(session, t.key, (domain.REVIEW,))
    store.add_deadline(session, t.key, domain.REVIEW, review_at)
    save(session, t, {"status": domain.PARKED}, action="park", actor=actor, note=data.get("note"),
         event="parked", event_actor=SYSTEM_ACTOR, event_data={"review_at": review_at})


def _unpark(session: Session, t: TaskView, event: dict, now: datetime, actor: tuple[str, str]) -> None:
    if t.status != domain.PARKED:
        return
    store.cancel_deadlines(session, t.key, (domain.REVIEW,))
    t = save(session, t, {"status": domain.ACKNOWLEDGED}, action="unpark", actor=actor,
             note=event["data"].get("note"), event="unparked", event_actor=SYSTEM_ACTOR)
    release(session, t, procedures.CASE_HOLD, now, actor, "unparked")


def superior_unit(lineage: list[str]) -> str:
    """Whom a supervised case's department answers to for it: the case's district (the command
    centre's level above the department's desk); the city for a case with no district."""
    return lineage[1] if len(lineage) > 1 else lineage[0]


def _supervise(session: Session, t: TaskView, event: dict, now: datetime, actor: tuple[str, str]) -> None:
    if t.supervised:
        return
    save(session, t, {"priority": 1, "supervised": True}, action="supervise", actor=actor,
         note=event["data"].get("note"), event="supervised", event_actor=SYSTEM_ACTOR,
         event_data={"superior_unit_code": superior_unit(t.lineage), "reason": event["data"].get("note")})


REACTIONS = {domain.CASE_CLOCK: _case_clock, domain.PARK: _park, domain.UNPARK: _unpark,
             domain.SUPERVISE: _supervise}
