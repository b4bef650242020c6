"""Sensors storage: devices and suspected cases. Reads grid.locate (docs/service-contracts.md)."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

SCHEMA = "sensors"
DEVICE_COLUMNS = ("id, kind, ST_X(location) AS lon, ST_Y(location) AS lat, grid_code, lineage, department_code, "
                  "alarm_map, heartbeat_seconds, active, registered_by, registered_at, last_seen_at")
CASE_COLUMNS = ("c.id, c.device_id, c.code, c.category_code, c.lineage, c.first_at, c.last_at, c.repeats, "
                "c.last_message, c.last_value, c.status, c.decided_by, c.decided_at, c.reason")


def locate(session: Session, lon: float, lat: float):
    """The leaf grid covering the point (grid's function), or None."""
    return session.execute(text("SELECT code, lineage FROM grid.locate(:lon, :lat)"), {"lon": lon, "lat": lat}).first()


def insert_device(session: Session, d, grid_code: str, lineage: list[str], by: str) -> bool:
    """False when the id is taken."""
    row = session.execute(text(
        "INSERT INTO sensors.devices (id, kind, location, grid_code, lineage, department_code, alarm_map, "
        "heartbeat_seconds, registered_by) VALUES (:id, :kind, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), "
        ":grid, :lineage, :dept, CAST(:map AS jsonb), :hb, :by) ON CONFLICT (id) DO NOTHING RETURNING id"),
        {"id": d.id, "kind": d.kind, "lon": d.lon, "lat": d.lat, "grid": grid_code, "lineage": lineage,
         "dept": d.department_code, "map": json.dumps(d.alarm_map), "hb": d.heartbeat_seconds, "by": by}).first()
    return row is not None


def device(session: Session, device_id: str, *, lock: bool = False):
    return session.execute(text(f"SELECT {DEVICE_COLUMNS} FROM sensors.devices WHERE id = :id"
                                + (" FOR UPDATE" if lock else "")), {"id": device_id}).first()


def devices(session: Session, scope: list[str] | None):
    """Every device, or those whose lineage meets the scope."""
    where = "" if scope is None else "WHERE lineage && CAST(:scope AS text[])"
    return session.execute(text(f"SELECT {DEVICE_COLUMNS} FROM sensors.devices {where} ORDER BY id"),
                           {"scope": scope}).all()


def deactivate(session: Session, device_id: str) -> None:
    session.execute(text("UPDATE sensors.devices SET active = false WHERE id = :id"), {"id": device_id})


def active_devices(session: Session, ids: list[str]) -> dict:
    rows = session.execute(text(f"SELECT {DEVICE_COLUMNS} FROM sensors.devices WHERE id = ANY(:ids) AND active"),
                           {"ids": ids}).all()
    return {r.id: r for r in rows}


def seen(session: Session, last_seen: dict[str, datetime]) -> None:
    """Moves each device's last_seen_at forward (never back: messages may arrive out of order)."""
    if last_seen:
        session.execute(text(
            "UPDATE sensors.devices d SET last_seen_at = GREATEST(d.last_seen_at, s.at) "
            "FROM unnest(CAST(:ids AS text[]), CAST(:ats AS timestamptz[])) AS s(id, at) WHERE d.id = s.id"),
            {"ids": list(last_seen), "ats": list(last_seen.values())})


def add_to_case(session: Session, *, device_id: str, code: str, category: str, lineage: list[str],
                at: datetime, message: str, value: float | None, window: timedelta,
                count: int = 1, last_at: datetime | None = None) -> tuple[uuid.UUID, bool]:
    """`count` alarms (the first at `at`, the last at `last_at`) count on the device's case for
    this code when that case is pending, or was decided less than `window` before the first;
    otherwise they open a case. (id, opened)."""
    last_at = last_at or at
    row = session.execute(text(
        "UPDATE sensors.cases SET repeats = repeats + :n, last_at = GREATEST(last_at, :last), "
        "last_message = :msg, last_value = :val "
        "WHERE id = (SELECT id FROM sensors.cases WHERE device_id = :d AND code = :c "
        "            AND (status = 'pending' OR decided_at > :at - CAST(:w AS interval)) "
        "            ORDER BY first_at DESC LIMIT 1) RETURNING id"),
        {"d": device_id, "c": code, "at": at, "last": last_at, "n": count, "msg": message, "val": value,
         "w": f"{window.total_seconds()} seconds"}).first()
    if row:
        return row.id, False
    row = session.execute(text(
        "INSERT INTO sensors.cases (id, device_id, code, category_code, lineage, first_at, last_at, repeats, "
        "last_message, last_value) VALUES (:id, :d, :c, :cat, :lineage, :at, :last, :n - 1, :msg, :val) "
        "ON CONFLICT (device_id, code) WHERE status = 'pending' "
        "DO UPDATE SET repeats = sensors.cases.repeats + :n, last_at = GREATEST(sensors.cases.last_at, EXCLUDED.last_at) "
        "RETURNING id, (xmax = 0) AS opened"),
        {"id": uuid.uuid4(), "d": device_id, "c": code, "cat": category, "lineage": lineage, "at": at,
         "last": last_at, "n": count, "msg": message, "val": value}).first()
    return row.id, bool(row.opened)


def silent_devices(session: Session, now: datetime, code: str):
    """Active devices with a heartbeat that have been quiet longer than it, without an open silence case."""
    return session.execute(text(
        f"SELECT {DEVICE_COLUMNS} FROM sensors.devices d WHERE active AND heartbeat_seconds > 0 "
        "AND COALESCE(last_seen_at, registered_at) < :now - make_interval(secs => heartbeat_seconds) "
        "AND NOT EXISTS (SELECT 1 FROM sensors.cases c WHERE c.device_id = d.id AND c.code = :code "
        "                AND c.status = 'pending') ORDER BY id"), {"now": now, "code": code}).all()


def case(session: Session, case_id: uuid.UUID, *, lock: bool = False):
    return session.execute(text(
        f"SELECT {CASE_COLUMNS}, ST_X(d.location) AS lon, ST_Y(d.location) AS lat, d.kind, d.department_code "
        "FROM sensors.cases c JOIN sensors.devices d ON d.id = c.device_id WHERE c.id = :id"
        + (" FOR UPDATE OF c" if lock else "")), {"id": case_id}).first()


def pending_cases(session: Session, scope: list[str] | None, limit: int):
    where = "" if scope is None else "AND c.lineage && CAST(:scope AS text[])"
    return session.execute(text(
        f"SELECT {CASE_COLUMNS}, ST_X(d.location) AS lon, ST_Y(d.location) AS lat, d.kind, d.department_code "
        f"FROM sensors.cases c JOIN sensors.devices d ON d.id = c.device_id WHERE c.status = 'pending' {where} "
        "ORDER BY c.first_at LIMIT :limit"), {"scope": scope, "limit": limit}).all()


def decide(session: Session, case_id: uuid.UUID, status: str, by: str, reason: str) -> None:
    session.execute(text("UPDATE sensors.cases SET status = :s, decided_by = :by, decided_at = now(), reason = :r "
                         "WHERE id = :id"), {"s": status, "by": by, "r": reason, "id": case_id})
