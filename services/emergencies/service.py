"""The emergencies service's nameko side: officers from grid's events, alerts from incidents'
events, stages widened on a timer.

Run: python -m services.nameko_run services.emergencies.service"""
from __future__ import annotations

import logging

from nameko.timer import timer

from services.emergencies import access
from services.emergencies import operations as ops
from shared.access import rpc
from shared.config import settings
from shared.events import on_event
from shared.nameko_support import OutboxRelay

log = logging.getLogger(__name__)

SWEEP_SECONDS = settings().emergencies_sweep_seconds


class EmergenciesService:
    name = "emergencies"
    access = access.TABLE

    relay = OutboxRelay("emergencies")

    @rpc
    def health(self) -> dict:
        return ops.health()

    @on_event("grid.member.*")
    def on_grid_event(self, event: dict) -> None:
        ops.on_grid_event(event)

    @on_event("incidents.incident.*")
    def on_incident_event(self, event: dict) -> None:
        outcome = ops.on_incident_event(event)
        if outcome not in ("not urgent", "duplicate", "nobody busy on it"):
            log.info("%s %s: %s", event["type"], event["data"].get("incident_id"), outcome)
            self.relay()

    @timer(interval=SWEEP_SECONDS)
    def widen_due(self) -> None:
        if ops.widen_due():
            self.relay()
