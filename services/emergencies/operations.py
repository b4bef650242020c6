"""What the emergencies service does: keeps officers' availability and positions from grid's
events, opens an alert for each urgent incident, widens it on time, and takes officers' answers.
Each change commits with its event (the outbox); each consumed event is taken once (the inbox)."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import text

from services.emergencies import access, domain, store
from shared import units
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.errors import NotFound
from shared.ids import parse_uuid
from shared.inbox import first_delivery
from shared.outbox import record_event
from shared.timefmt import iso_utc, utcnow

log = logging.getLogger(__name__)
SCHEMA = store.SCHEMA
MEMBER_EVENTS = ("grid.member.created", "grid.member.updated", "grid.member.assigned", "grid.member.released")


# --- officers, as grid says --------------------------------------------------------------------

def on_grid_event(event: dict) -> str:
    data = event["data"]
    with session_scope() as session:
        if not first_delivery(session, SCHEMA, "emergencies.on_grid_event", event):
            return "duplicate"
        if event["type"] == "grid.member.position_reported":
            store.set_position(session, data["member_id"], float(data["lon"]), float(data["lat"]),
                               datetime.fromisoformat(data["reported_at"]))
            return "position"
        if event["type"] not in MEMBER_EVENTS or data.get("role") != "officer":
            return "ignored"
        grids = sorted({a["grid_code"] for a in data.get("assignments") or []})
        lineage = sorted({code for g in grids for code in units.lineage(g)})
        store.upsert_officer(session, data["member_id"], int(data.get("version") or 0), name=data.get("name") or "", grids=grids, lineage=lineage,
                             active=bool(data.get("active", True)), on_duty=bool(data.get("on_duty")))
        return "officer"


# --- alerts ----------------------------------------------------------------------------------

def on_incident_event(event: dict) -> str:
    data = event["data"]
    with session_scope() as session:
        if not first_delivery(session, SCHEMA, "emergencies.on_incident_event", event):
            return "duplicate"
        incident_id = uuid.UUID(data["incident_id"])
        if event["type"] in domain.FREES_OFFICER:
            withdrawn = _withdraw(session, incident_id, event["type"])
            freed = store.free_officers_of(session, incident_id)
            if withdrawn:
                return withdrawn
            return f"freed {', '.join(freed)}" if freed else "nobody busy on it"
        if event["type"] != "incidents.incident.reported" or not domain.is_urgent(data):
            return "not urgent"
        return _open(session, incident_id, data)


def _open(session, incident_id: uuid.UUID, data: dict) -> str:
    s, now = settings(), utcnow()
    alert_id = uuid.uuid4()
    lon, lat = float(data["location"]["lon"]), float(data["location"]["lat"])
    title = f"{data.get('category')} in {data.get('grid_code')}"
    if not store.insert_alert(session, alert_id, incident_id, str(data.get("category")), title,
                              list(data.get("lineage") or []), lon, lat, domain.NEAR, None):
        return "alert open already"
    return _send(session, store.alert(session, alert_id), domain.NEAR, now, s)


def _send(session, alert, stage: str, now: datetime, s) -> str:
    """Alerts the stage's officers, or when it has none moves on at once (near -> district ->
    escalated to the dispatchers)."""
    while stage != domain.ESCALATED:
        reached = {r.member_id for r in store.recipients(session, alert.id)}
        found = store.candidates(
            session, alert.lon, alert.lat, fresh_since=now - timedelta(seconds=s.emergencies_position_max_age_seconds),
            within_m=s.emergencies_radius_m if stage == domain.NEAR else None,
            district=domain.district_of(alert.lineage) if stage == domain.DISTRICT else None,
            exclude=sorted(reached), limit=50)
        people = domain.order([domain.Candidate(r.member_id, r.name, float(r.distance_m), int(r.open_cases))
                               for r in found])
        if people:
            deadline = store.stage_deadline(now, s.emergencies_answer_seconds)
            store.move_stage(session, alert.id, stage, deadline)
            store.add_recipients(session, alert.id, stage, people)
            record_event(session, SCHEMA, "emergencies.alert.sent", f"alerts/{alert.id}", {
                **_alert_data(alert), "stage": stage, "deadline": iso_utc(deadline),
                "recipients": [{"member_id": p.member_id, "distance_m": round(p.distance_m, 1)} for p in people]})
            return f"{stage}: {len(people)} officers alerted"
        stage = domain.next_stage(stage)
    store.move_stage(session, alert.id, domain.ESCALATED, None)
    record_event(session, SCHEMA, "emergencies.alert.escalated", f"alerts/{alert.id}", {
        **_alert_data(alert), "district": domain.district_of(alert.lineage),
        "reason": "no officer nearby or in the district accepted"})
    return "escalated to the dispatchers"


def _withdraw(session, incident_id: uuid.UUID, event_type: str) -> str | None:
    """An alert nobody took is withdrawn when its case ends, so phones stop offering it."""
    alert = store.withdraw(session, incident_id)
    if alert is None:
        return None
    ended = event_type.rsplit(".", 1)[-1]
    record_event(session, SCHEMA, "emergencies.alert.withdrawn", f"alerts/{alert.id}", {
        **_alert_data(alert), "recipients": _reached(store.recipients(session, alert.id)),
        "reason": f"the incident was {ended}"})
    return f"alert withdrawn: the incident was {ended}"


def _reached(people) -> list[dict]:
    return [{"member_id": r.member_id, "distance_m": round(r.distance_m or 0, 1)} for r in people]


def _alert_data(alert) -> dict:
    return {"alert_id": str(alert.id), "incident_id": str(alert.incident_id), "category": alert.category,
            "title": alert.title, "lineage": list(alert.lineage), "location": {"lon": alert.lon, "lat": alert.lat}}


def widen_due(now: datetime | None = None) -> int:
    """Alerts nobody accepted in time move to their next stage. Returns how many moved."""
    now, s = now or utcnow(), settings()
    moved = 0
    with session_scope() as session:
        for alert_id in store.due_alerts(session, now):
            alert = store.alert(session, alert_id)
            _send(session, alert, domain.next_stage(alert.stage), now, s)
            moved += 1
    return moved


def answer(caller: Principal, alert_id: str, accept: bool, reason: str = ""):
    aid = parse_uuid(alert_id, "alert id")
    with session_scope() as session:
        alert = store.alert(session, aid, lock=True)
        if alert is None:
            raise NotFound(f"no alert {alert_id}")
        people = store.recipients(session, aid)
        domain.may_answer(caller, {r.member_id for r in people}, alert.status, alert.accepted_by)
        store.answer(session, aid, caller.member_id, "accepted" if accept else "declined", reason.strip())
        if accept:
            store.accept(session, aid, caller.member_id, alert.incident_id)
            me = store.officer(session, caller.member_id)
            record_event(session, SCHEMA, "emergencies.alert.accepted", f"alerts/{aid}", {
                **_alert_data(alert), "member_id": caller.member_id, "member_name": me.name if me else "",
                "recipients": _reached(people),
                "after_seconds": round((utcnow() - alert.opened_at).total_seconds(), 3)})
        else:
            record_event(session, SCHEMA, "emergencies.alert.declined", f"alerts/{aid}", {
                **_alert_data(alert), "member_id": caller.member_id, "reason": reason.strip()})
            stage_people = [r for r in people if r.stage == alert.stage]
            if all(r.answer == "declined" or r.member_id == caller.member_id for r in stage_people):
                # Everybody reached has said no: widen now rather than at the deadline.
                _send(session, alert, domain.next_stage(alert.stage), utcnow(), settings())
        return store.alert(session, aid), store.recipients(session, aid)


def suggest(caller: Principal, incident_id: str, limit: int = 5) -> list[domain.Candidate]:
    """The nearest available officers to an urgent incident (no radius), for a dispatcher."""
    iid = parse_uuid(incident_id, "incident id")
    limit = domain.check_limit(limit)
    s = settings()
    with session_scope() as session:
        alert = store.alert_of_incident(session, iid)
        if alert is None:
            raise NotFound(f"incident {incident_id} raised no alert (it is not urgent, or not yet taken in)")
        domain.may_suggest(caller, list(alert.lineage))
        found = store.candidates(session, alert.lon, alert.lat,
                                 fresh_since=utcnow() - timedelta(seconds=s.emergencies_position_max_age_seconds),
                                 within_m=None, district=None, exclude=[], limit=limit)
        return domain.order([domain.Candidate(r.member_id, r.name, float(r.distance_m), int(r.open_cases))
                             for r in found])


def get(caller: Principal, alert_id: str):
    aid = parse_uuid(alert_id, "alert id")
    with session_scope() as session:
        alert = store.alert(session, aid)
        if alert is None:
            raise NotFound(f"no alert {alert_id}")
        people = store.recipients(session, aid)
        if caller.member_id not in {r.member_id for r in people}:  # a recipient reads it; else by scope
            domain.may_suggest(caller, list(alert.lineage), access.READ)
        return alert, people


def health() -> dict:
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    return {"status": "SERVING"}
