"""The incidents service's nameko entry points: RPC for other services and the handlers of
dispatch's events. Thin: they call operations.

Run: python -m services.nameko_run services.incidents.service
Callers pass `authorization: Bearer <token>` in nameko's context data."""
from __future__ import annotations

import logging
from dataclasses import asdict

from services.incidents import access, domain
from services.incidents import operations as ops
from shared.access import rpc
from shared.events import on_event
from shared.nameko_support import Caller, OutboxRelay
from shared.timefmt import parse_iso

log = logging.getLogger(__name__)


def incident_dict(v: ops.IncidentView) -> dict:
    d = asdict(v)
    for k in ("occurred_at", "reported_at", "updated_at", "review_at"):
        d[k] = getattr(v, k).isoformat() if getattr(v, k) else None
    return d


class IncidentsService:
    name = "incidents"
    access = access.TABLE

    caller = Caller()
    relay = OutboxRelay("incidents")

    @rpc
    def health(self) -> dict:
        return ops.health()

    @rpc
    def get_incident(self, incident_id: str) -> dict:
        incident, history = ops.get(self.caller(), incident_id)
        d = incident_dict(incident)
        d["history"] = [{**asdict(h), "at": h.at.isoformat()} for h in history]
        return d

    @rpc
    def transition(self, incident_id: str, action: str, expected_version: int, note: str | None = None,
                   department_code: str | None = None, violation_confirmed: bool = False,
                   duplicate_of: str | None = None, review_at: str | None = None) -> dict:
        req = domain.Request(action=action, department_code=department_code, note=note,
                             violation_confirmed=violation_confirmed, duplicate_of=duplicate_of,
                             review_at=parse_iso(review_at, "review_at"))
        return incident_dict(ops.transition(self.caller(), incident_id, expected_version, req))

    @on_event("sensors.case.confirmed")
    def take_sensor_case(self, event: dict) -> None:
        log.info("sensor case %s: %s", event["data"].get("case_id"), ops.take_sensor_case(event))
        self.relay()

    @on_event("dispatch.task.*")
    def apply_dispatch_event(self, event: dict) -> None:
        outcome = ops.apply_dispatch_event(event)
        log.info("dispatch event %s %s: %s", event["type"], event["id"], outcome)
        self.relay()  # wake the relay: the incident's own event should leave now
