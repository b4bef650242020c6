"""The credit registry's nameko entry points: closed incidents become records, and RPC for
other services. Thin: they call operations.

Run: python -m services.nameko_run services.credit.service"""
from __future__ import annotations

import logging
from dataclasses import asdict

from nameko.timer import timer

from services.credit import access, chain
from services.credit import operations as ops
from services.credit import violations
from shared.access import rpc
from shared.config import settings
from shared.events import on_event
from shared.nameko_support import Caller, OutboxRelay

log = logging.getLogger(__name__)

# How often to look for list changes that time alone makes (records expiring or taking effect).
SWEEP_SECONDS = settings().credit_sweep_seconds
# How often to sign a checkpoint of the chain's head (when it moved).
CHECKPOINT_SECONDS = settings().credit_checkpoint_seconds


class CreditService:
    name = "credit"
    access = access.TABLE

    caller = Caller()
    relay = OutboxRelay("credit")

    @rpc
    def health(self) -> dict:
        return ops.health()

    @rpc
    def get_standing(self, subject_id: str, purpose: str = "") -> dict:
        s = ops.get_standing(self.caller(), subject_id, purpose=purpose)
        return {"subject_id": s.subject.id, "score": s.score, "lists": s.lists, "as_of": s.as_of.isoformat(),
                "subject": {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(s.subject).items()}}

    @on_event("incidents.incident.closed")
    def on_incident_closed(self, event: dict) -> None:
        outcome = violations.on_incident_closed(event)
        log.info("incident %s closed: %s", event["data"].get("incident_id"), outcome)
        self.relay()

    @timer(interval=SWEEP_SECONDS)
    def sweep_standings(self) -> None:
        changed = ops.sweep_standings()
        if changed:
            log.info("%d subjects changed lists as records expired or took effect", changed)
            self.relay()

    @timer(interval=CHECKPOINT_SECONDS, eager=True)
    def checkpoint_chain(self) -> None:
        signed = chain.checkpoint_chain()
        if signed is not None:
            log.info("signed a checkpoint of the credit chain: %d records, head %s", signed.record_count,
                     signed.head_hash)
            self.relay()
