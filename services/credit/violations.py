"""Violations from incidents: a closed incident with a confirmed violation by a named subject
becomes one credit record, once per event."""
from __future__ import annotations

import logging
import uuid

from services.credit import domain, store
from services.credit import operations as ops
from shared.db import session_scope
from shared.errors import InvalidArgument
from shared.ids import parse_uuid
from shared.inbox import first_delivery

log = logging.getLogger(__name__)

CONSUMER = "credit.on_incident_closed"


def on_incident_closed(event: dict) -> str:
    """A closed incident with a confirmed violation by a named subject becomes one record. One
    that cannot be matched is kept for an operator (ListUnmatched), never dropped."""
    data = event["data"]
    subject = data.get("subject")
    if not (data.get("violation_confirmed") and subject):
        return "no violation confirmed"
    with session_scope() as session:
        if not first_delivery(session, ops.SCHEMA, CONSUMER, event):
            return "duplicate event"
        source = f"event:{event['id']}"
        if store.source_exists(session, source):
            return "recorded already"
        row, why = None, None
        try:
            if subject.get("type") == domain.ENTERPRISE:
                uscc = domain.check_uscc(subject.get("ref", ""))
                row = store.subject(session, uscc=uscc)
                if row is None:  # a valid code not yet registered: register it, its name to be confirmed
                    sid = uuid.uuid4()
                    store.insert_subject(session, {"id": sid, "type": domain.ENTERPRISE, "uscc": uscc, "id_lookup": None,
                                                   "id_masked": None, "name": f"(unverified) {uscc}",
                                                   "registered_grid": data.get("grid_code"), "name_verified": False})
                    row = store.subject(session, subject_id=sid)
            elif subject.get("type") == domain.PERSON:
                row = store.subject(session, subject_id=parse_uuid(subject.get("ref", ""), "person subject id"))
                why = None if row else "no person with this subject id in the registry"
            else:
                why = f"unknown subject type {subject.get('type')!r}"
        except InvalidArgument as exc:
            why = exc.message
        if row is None:
            store.add_unmatched(session, event["id"], data.get("incident_id"), subject.get("type"),
                                subject.get("ref"), why or "no such subject")
            log.warning("closed incident %s names a subject the registry cannot match: %s", data.get("incident_id"), why)
            return "unmatched"
        severity = ops.rules().severity_from_priority.get(int(data.get("priority") or 4), 4)
        actor = data.get("actor") or {}
        ops.append_record(session, row.id, kind="violation", category=str(data.get("category") or "-"),
                severity=severity, source=source, incident_id=data.get("incident_id"),
                confirmed_by=str(actor.get("id") or "incidents"), supersedes=None, reason=None)
        return "recorded"
