"""Personal data that must not leave whole in logs and events."""


def mask_phone(phone: str) -> str:
    """138****5678: enough to recognise, not enough to call."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


# --- personal fields of event payloads ------------------------------------------------------
# What an outside subscriber receives only when its subscription is granted the field's kind
# (services/subscriptions); ungranted fields are removed from the payload it gets. The one
# declaration of which event fields are personal: tests/subscriptions/test_filter.py holds it
# against every payload in protos/**/events.proto.
PHONES = "phones"        # phone numbers, even masked
POSITIONS = "positions"  # where a person is or was: officers' reported points, who was near an alert
IDENTITY = "identity"    # who a person is: names, member ids of actors, credit subjects
REPORTERS = "reporters"  # who reported a case
NOTES = "notes"          # free text people wrote: notes, reasons, resolutions, titles
GRANTS = (PHONES, POSITIONS, IDENTITY, REPORTERS, NOTES)

# Payload message (full proto name) -> {field path: kind}. A path names a field of the payload,
# or with a dot a field inside a message field (in each element of a list of them).
PERSONAL_FIELDS: dict[str, dict[str, str]] = {
    "gridbus.grid.v1.events.UnitsImported": {"by": IDENTITY},
    "gridbus.grid.v1.events.MemberEventData": {"name": IDENTITY, "phone": PHONES},
    "gridbus.grid.v1.events.PositionReported": {"lon": POSITIONS, "lat": POSITIONS, "as_sent": POSITIONS},
    "gridbus.grid.v1.events.SessionsRevoked": {"member_id": IDENTITY},
    "gridbus.incidents.v1.events.IncidentEventData": {
        "reporter_id": REPORTERS, "subject": IDENTITY, "actor.id": IDENTITY, "note": NOTES},
    "gridbus.dispatch.v1.events.TaskEventData": {
        "actor.id": IDENTITY, "reason": NOTES, "resolution": NOTES, "note": NOTES},
    "gridbus.emergencies.v1.events.AlertData": {
        "recipients": POSITIONS, "member_id": IDENTITY, "title": NOTES, "reason": NOTES},
    "gridbus.credit.v1.events.RecordAdded": {"subject_id": IDENTITY, "confirmed_by": IDENTITY},
    "gridbus.credit.v1.events.ListChanged": {"subject_id": IDENTITY},
    "gridbus.credit.v1.events.RepairApplied": {"subject_id": IDENTITY, "received_by": IDENTITY},
    "gridbus.credit.v1.events.RepairDecided": {"subject_id": IDENTITY, "decided_by": IDENTITY, "reason": NOTES},
    "gridbus.credit.v1.events.ChainCheckpoint": {},
    "gridbus.sensors.v1.events.DeviceRegistered": {"by": IDENTITY},
    "gridbus.sensors.v1.events.DeviceDeactivated": {"by": IDENTITY},
    "gridbus.sensors.v1.events.CaseData": {"by": IDENTITY, "reason": NOTES},
}

# Fields whose names sound personal but are not, each reviewed: the test above fails on any
# personal-sounding field in neither table.
NOT_PERSONAL: dict[str, str] = {
    "gridbus.incidents.v1.events.IncidentEventData.location": "where the case is, not where a person is",
    "gridbus.emergencies.v1.events.AlertData.location": "where the case is",
    "gridbus.sensors.v1.events.CaseData.location": "where a device is",
    "gridbus.grid.v1.events.SessionsRevoked.reason": "one of a fixed set of words (deactivated, released, password set), never free text",
    "gridbus.sensors.v1.events.CaseData.message": "a device's alarm text",
    "gridbus.grid.v1.events.MemberEventData.member_id": "a pseudonymous id: the name and phone are what identify",
    "gridbus.grid.v1.events.PositionReported.member_id": "a pseudonymous id; the point itself is a position",
    "gridbus.incidents.v1.events.IncidentEventData.actor": "its role stays; its id is identity",
    "gridbus.dispatch.v1.events.TaskEventData.actor": "its role stays; its id is identity",
    "gridbus.credit.v1.events.ListChanged.subject_type": "enterprise or person",
    "gridbus.credit.v1.events.ListChanged.subject_code": "an enterprise's public registration code; null for a person",
}


def personal_fields(message: str) -> dict[str, str] | None:
    """The personal fields of a payload message; None when it was never reviewed."""
    return PERSONAL_FIELDS.get(message)
