"""The dispatch service's nameko entry points: the incidents events it acts on, the deadline
scheduler, and RPC for other services. Thin: they call operations.

Run: python -m services.nameko_run services.dispatch.service"""
from __future__ import annotations

import logging
from dataclasses import asdict

from nameko.timer import timer

from services.dispatch import access, domain
from services.dispatch import operations as ops
from shared.access import rpc
from shared.events import on_event
from shared.nameko_support import Caller, OutboxRelay

log = logging.getLogger(__name__)


def task_dict(t: ops.TaskView) -> dict:
    d = asdict(t)
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in d.items()
            if k not in ("history", "assists")}


class DispatchService:
    name = "dispatch"
    access = access.TABLE

    caller = Caller()
    relay = OutboxRelay("dispatch")

    @rpc
    def health(self) -> dict:
        return ops.health()

    @rpc
    def get_task(self, task_id: str) -> dict:
        return task_dict(ops.get_task(self.caller(), task_id))

    @rpc
    def request_procedure(self, task_id: str, procedure: str, reason: str, expected_version: int,
                          minutes: int = 0) -> dict:
        return task_dict(ops.request_procedure(self.caller(), task_id, procedure, reason, minutes, expected_version))

    @rpc
    def decide_procedure(self, task_id: str, procedure: str, approve: bool, reason: str, expected_version: int,
                         granted_minutes: int = 0) -> dict:
        return task_dict(ops.decide_procedure(self.caller(), task_id, procedure, approve, reason, granted_minutes,
                                              expected_version))

    @on_event(domain.INCIDENT_REPORTED)
    def on_incident_reported(self, event: dict) -> None:
        outcome = ops.on_incident_reported(event)
        log.info("incident %s reported: %s", event["data"].get("incident_id"), outcome)
        self.relay()

    @on_event(*domain.TASK_FOLLOWS)
    def on_incident_changed(self, event: dict) -> None:
        outcome = ops.on_incident_changed(event)
        log.info("%s for incident %s: %s", event["type"], event["data"].get("incident_id"), outcome)
        self.relay()

    @timer(interval=1)
    def fire_deadlines(self) -> None:
        """Deadlines are rows: every replica looks, each missed one escalates once."""
        fired = ops.fire_due_deadlines()
        if fired:
            log.info("escalated %d missed deadlines", fired)
            self.relay()
