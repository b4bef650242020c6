"""What the sensors service does, called by its entry points (gRPC, the alarm intake, the timer).

Every change commits with its event (the outbox); an alarm storm writes one row per new case
and counts the rest on it, with one event per case, not per alarm."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from services.sensors import broker, domain, store
from shared import auth
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.errors import AlreadyExists, FailedPrecondition, NotFound
from shared.ids import parse_uuid
from shared.outbox import record_event
from shared.timefmt import iso_utc, utcnow

log = logging.getLogger(__name__)
SCHEMA = store.SCHEMA
MAX_PAGE = 500


@dataclass
class Registered:
    device: object
    mqtt_username: str
    mqtt_password: str
    topic: str


@dataclass
class Intake:
    """What a batch of MQTT messages did."""
    alarms: int = 0
    heartbeats: int = 0
    opened: list = None        # case ids opened by this batch
    rejected: list = None      # (index in the batch, reason)


def _scope(caller: Principal) -> list[str] | None:
    return None if caller.role == auth.SERVICE else list(caller.scope)


def register_device(caller: Principal, *, id_: str, kind: str, lon: float, lat: float, department_code: str,
                    alarm_map: dict[str, str], heartbeat_seconds: int = 0) -> Registered:
    draft = domain.check_device(id_=id_, kind=kind, lon=lon, lat=lat, department_code=department_code,
                                alarm_map=alarm_map, heartbeat_seconds=heartbeat_seconds)
    s = settings()
    with session_scope() as session:
        grid = store.locate(session, draft.lon, draft.lat)
        if grid is None:
            raise FailedPrecondition(f"({draft.lon}, {draft.lat}) is in no grid of this city")
        domain.may_manage_devices(caller, list(grid.lineage))
        if not store.insert_device(session, draft, grid.code, list(grid.lineage), caller.member_id):
            raise AlreadyExists(f"device {draft.id} is registered already")
        record_event(session, SCHEMA, "sensors.device.registered", f"devices/{draft.id}", {
            "device_id": draft.id, "kind": draft.kind, "grid_code": grid.code, "department_code": draft.department_code,
            "alarm_codes": sorted(draft.alarm_map), "heartbeat_seconds": draft.heartbeat_seconds,
            "by": caller.member_id})
        # The broker account last, so a refused registration leaves none; the commit follows at once.
        username, password = broker.provision(s.broker_management_url, s.amqp_uri, draft.id)
        row = store.device(session, draft.id)
    return Registered(row, username, password, domain.topic_of(draft.id))


def list_devices(caller: Principal):
    auth.require_role(caller, auth.ADMIN, auth.DISPATCHER, auth.SERVICE)
    with session_scope() as session:
        return store.devices(session, _scope(caller))


def deactivate_device(caller: Principal, device_id: str) -> None:
    s = settings()
    if not domain.DEVICE_ID.fullmatch(device_id or ""):
        raise NotFound(f"no device {device_id!r}")
    with session_scope() as session:
        row = store.device(session, device_id, lock=True)
        if row is None:
            raise NotFound(f"no device {device_id}")
        domain.may_manage_devices(caller, list(row.lineage))
        if not row.active:
            return
        store.deactivate(session, device_id)
        record_event(session, SCHEMA, "sensors.device.deactivated", f"devices/{device_id}",
                     {"device_id": device_id, "by": caller.member_id})
        broker.revoke(s.broker_management_url, device_id)   # its connections close with its account


def ingest(messages: list[tuple[str, bytes]], now: datetime | None = None) -> Intake:
    """A batch of MQTT messages (routing key, body) in one transaction. Malformed ones, and those
    of unknown or deactivated devices, are rejected with their reason and change nothing."""
    now = now or utcnow()
    window = domain.collapse_window(settings().sensors_collapse_minutes)
    out = Intake(opened=[], rejected=[])
    parsed = []
    for i, (routing_key, body) in enumerate(messages):
        try:
            parsed.append((i, *domain.parse_message(routing_key, body, now)))
        except domain.Malformed as exc:
            out.rejected.append((i, str(exc)))
    with session_scope() as session:
        devices = store.active_devices(session, sorted({device_id for _, device_id, _ in parsed}))
        last_seen: dict[str, datetime] = {}
        # A storm's batch holds many alarms of one device and code: one statement counts them all.
        groups: dict[tuple[str, str], list] = {}
        for i, device_id, alarm in parsed:
            device = devices.get(device_id)
            if device is None:
                out.rejected.append((i, f"no active device {device_id}"))
                continue
            at = alarm.at if alarm else now
            last_seen[device_id] = max(last_seen.get(device_id, at), at)
            if alarm is None:
                out.heartbeats += 1
                continue
            try:
                domain.category_of(device.alarm_map, alarm.code)
            except domain.Malformed as exc:
                out.rejected.append((i, str(exc)))
                continue
            out.alarms += 1
            groups.setdefault((device_id, alarm.code), []).append(alarm)
        for (device_id, code), alarms in groups.items():
            device, first, last = devices[device_id], min(alarms, key=lambda a: a.at), alarms[-1]
            category = device.alarm_map[code]
            case_id, opened = store.add_to_case(session, device_id=device_id, code=code, category=category,
                                                lineage=list(device.lineage), at=first.at, message=last.message,
                                                value=last.value, window=window, count=len(alarms),
                                                last_at=max(a.at for a in alarms))
            if opened:
                out.opened.append(case_id)
                _suspected(session, case_id, device, code, category, first.at, first.message, first.value)
        store.seen(session, last_seen)
    out.rejected.sort()
    return out


def _suspected(session, case_id, device, code, category, at, message, value) -> None:
    record_event(session, SCHEMA, "sensors.case.suspected", f"cases/{case_id}", {
        "case_id": str(case_id), "device_id": device.id, "kind": device.kind, "code": code, "category": category,
        "grid_code": device.grid_code, "lineage": list(device.lineage),
        "location": {"lon": device.lon, "lat": device.lat}, "at": iso_utc(at), "message": message, "value": value})


def sweep_silent(now: datetime | None = None) -> int:
    """Opens a case for each device quiet for longer than its heartbeat. Returns how many."""
    now = now or utcnow()
    opened = 0
    with session_scope() as session:
        for device in store.silent_devices(session, now, domain.SILENT):
            category = device.alarm_map[domain.SILENT]
            last = device.last_seen_at or device.registered_at
            message = f"no message since {iso_utc(last)} (heartbeat {device.heartbeat_seconds} s)"
            case_id, was_opened = store.add_to_case(
                session, device_id=device.id, code=domain.SILENT, category=category, lineage=list(device.lineage),
                at=now, message=message, value=None, window=domain.collapse_window(0))
            if was_opened:
                opened += 1
                _suspected(session, case_id, device, domain.SILENT, category, now, message, None)
    return opened


def list_pending(caller: Principal, limit: int = 100):
    domain.may_review(caller)
    limit = min(max(limit or 100, 1), MAX_PAGE)
    with session_scope() as session:
        return store.pending_cases(session, _scope(caller), limit)


def decide(caller: Principal, case_id: str, decision: str, reason: str = ""):
    """Confirm (incidents takes it in as a report, from the event) or dismiss a suspected case."""
    cid = parse_uuid(case_id, "case id")
    with session_scope() as session:
        row = store.case(session, cid, lock=True)
        if row is None:
            raise NotFound(f"no suspected case {case_id}")
        status = domain.plan_decision(caller, decision, row.status, list(row.lineage), reason)
        store.decide(session, cid, status, caller.member_id, reason.strip())
        data = {"case_id": str(cid), "device_id": row.device_id, "kind": row.kind, "code": row.code,
                "category": row.category_code, "grid_code": row.lineage[-1], "lineage": list(row.lineage),
                "location": {"lon": row.lon, "lat": row.lat}, "first_at": iso_utc(row.first_at),
                "last_at": iso_utc(row.last_at), "repeats": row.repeats, "message": row.last_message,
                "department_code": row.department_code, "by": caller.member_id, "reason": reason.strip()}
        record_event(session, SCHEMA, f"sensors.case.{status}", f"cases/{cid}", data)
        return store.case(session, cid)


def health() -> dict:
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    return {"status": "SERVING"}
