"""Reacting to other services: dispatch's decisions applied to incidents, once per event, and
sensor alarms a person confirmed taken in as reports."""
from __future__ import annotations

import logging
from datetime import datetime

from services.incidents import domain, report_rules, store
from services.incidents.operations.intake import report
from services.incidents.operations.lifecycle import transition_in
from services.incidents.operations.views import SCHEMA
from shared import auth
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from shared.ids import parse_uuid
from shared.inbox import claim
from shared.timefmt import utcnow

log = logging.getLogger(__name__)

SYSTEM = Principal("incidents", auth.SERVICE, ())

CONSUMER = "incidents.apply_dispatch_event"


def apply_dispatch_event(event: dict) -> str:
    """Applies a dispatch decision to its incident, once per event id. Returns what happened.
    Which decision makes which action is the action table's `from_dispatch` (domain.ACTIONS).

    A decision the incident has moved past (a late or repeated event) is logged and dropped:
    retrying could never make it legal."""
    data = event["data"]
    action = domain.action_for_dispatch_event(event["type"])
    if action is None:
        return "ignored"
    if action.department == domain.SETS and not data.get("department_code"):
        return "manual queue"
    actor = data.get("actor") or {}
    note = data.get("reason") or data.get("note") or data.get("resolution")
    if action.note and not note:
        note = f"by dispatch ({event['type']})"
    with session_scope() as session:
        # The inbox row and the change commit together: a crash in between redoes both. The
        # claim rides on the incident's read: one round trip.
        claimed, row = store.claim_and_get(session, claim(SCHEMA, CONSUMER, event), _incident_id(data))
        if not claimed:
            return "duplicate"
        try:
            # No savepoint: transition_in raises its typed errors before its first write, so on
            # "not applicable" only the inbox row commits.
            iid = parse_uuid(data["incident_id"], "incident id")
            instead = row and domain.reassignment(action, row[0].status, row[0].department_code,
                                                  data.get("department_code"))
            if instead:
                action, note = instead, note or "reassigned by a dispatcher"
            req = domain.Request(action=action.name, department_code=data.get("department_code"), note=note,
                                 duplicate_of=data.get("into_incident_id") if action.takes == "duplicate_of"
                                 else None)
            transition_in(session, SYSTEM, iid, 0, req,
                          (str(actor.get("id") or "dispatch"), str(actor.get("role") or auth.SERVICE)), row)
            return action.name
        except (FailedPrecondition, InvalidArgument, NotFound) as exc:
            if (isinstance(exc, FailedPrecondition) and row is not None
                    and domain.arrived_early(action.name, row[0].status)):
                # Rolls back the inbox row too; the consumer retries it in place, after the
                # decision it overtook (e.g. resolved before acknowledged) has been applied.
                raise Aborted(f"{event['type']} arrived before the incident reached the state it "
                              f"applies to ({row[0].status}); waiting for the earlier decision") from exc
            log.warning("dispatch event %s (%s) not applied to incident %s: %s",
                        event["id"], event["type"], data.get("incident_id"), exc)
            return "not applicable"


def _incident_id(data: dict):
    """The event's incident id, or None when it is malformed (then no incident matches)."""
    try:
        return parse_uuid(data["incident_id"], "incident id")
    except InvalidArgument:
        return None


def take_sensor_case(event: dict) -> str:
    """A sensor alarm a person confirmed (sensors.case.confirmed) is reported for its device, with
    the case id as the report id: a repeated event returns the first report. It is then
    dispatched as any other. One older than a report may be (report_rules.MAX_AGE) is dated
    when it was confirmed."""
    data = event["data"]
    now = utcnow()
    first = datetime.fromisoformat(data["first_at"])
    occurred = first if first > now - report_rules.MAX_AGE else datetime.fromisoformat(event["time"])
    note = f"; {data['message']}" if data.get("message") else ""
    description = (f"sensor {data['device_id']} ({data['kind']}) raised {data['code']} "
                   f"{data['repeats'] + 1} times, confirmed by {data['by']}{note}")
    result = report(Principal(f"sensor:{data['device_id']}", auth.SERVICE, ()), report_id=data["case_id"],
                    category_code=data["category"], title=f"{data['kind']} {data['device_id']}: {data['code']}"[:120],
                    description=description[:report_rules.MAX_DESCRIPTION], lon=data["location"]["lon"],
                    lat=data["location"]["lat"], accuracy_m=1.0, occurred_at=occurred, now=now)
    return "already reported" if result.replayed else f"reported as incident {result.incident.id}"
