"""Sensor rules: what a device is, what an alarm must hold, when alarms collapse into one case,
when a silent device raises its own, and who may do what. Plain Python, no I/O.

A sensor alarm is never a case by itself: it becomes a suspected case (待核实) that an officer or
an operator confirms (then incidents takes it in as a report and it is dispatched as any other)
or dismisses.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.incidents.report_rules import check_category_code
from services.sensors import access
from shared import access as shared_access, auth
from shared.auth import Principal
from shared.errors import FailedPrecondition, InvalidArgument

# Kinds of devices gridbus takes alarms from.
KINDS = ("manhole_cover", "smoke", "water_level", "camera_analytics", "gas", "other")
DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")
ALARM_CODE = re.compile(r"[A-Z0-9_]{1,32}")
SILENT = "SILENT"          # the code of the case a silent device raises (its category in the alarm map)
MAX_PAYLOAD_BYTES = 4096
MAX_ALARM_CODES = 64
MAX_CLOCK_SKEW = timedelta(minutes=5)

# Suspected cases: each decision from pending, by whom.
PENDING, CONFIRMED, DISMISSED = "pending", "confirmed", "dismissed"
DECISIONS = {
    "confirm": (CONFIRMED, (auth.OFFICER, auth.DISPATCHER, auth.ADMIN)),
    "dismiss": (DISMISSED, (auth.OFFICER, auth.DISPATCHER, auth.ADMIN)),
}


class Malformed(Exception):
    """An MQTT message that cannot be an alarm; it goes to the dead-letter queue with this reason."""


@dataclass(frozen=True)
class DeviceDraft:
    id: str
    kind: str
    lon: float
    lat: float
    department_code: str
    alarm_map: dict[str, str]      # alarm code -> incident category code
    heartbeat_seconds: int          # 0: the device sends no heartbeat


@dataclass(frozen=True)
class Alarm:
    device_id: str
    code: str
    at: datetime
    value: float | None
    message: str


def check_device(*, id_: str, kind: str, lon: float, lat: float, department_code: str,
                 alarm_map: dict[str, str], heartbeat_seconds: int) -> DeviceDraft:
    if not DEVICE_ID.fullmatch(id_ or ""):
        raise InvalidArgument(f"device id must be 3-63 of a-z 0-9 - (starting with a letter or digit), not {id_!r}")
    if kind not in KINDS:
        raise InvalidArgument(f"device kind {kind!r} is not one of {', '.join(KINDS)}")
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidArgument(f"location ({lon}, {lat}) is not a WGS 84 longitude and latitude")
    if not re.fullmatch(r"[0-9A-Za-z_.-]{1,64}", department_code or ""):
        raise InvalidArgument(f"department code {department_code!r} is not valid")
    if not alarm_map:
        raise InvalidArgument("the alarm map must map at least one alarm code to a category")
    if len(alarm_map) > MAX_ALARM_CODES:
        raise InvalidArgument(f"at most {MAX_ALARM_CODES} alarm codes a device")
    for code, category in alarm_map.items():
        if not ALARM_CODE.fullmatch(code):
            raise InvalidArgument(f"alarm code {code!r} must be 1-32 of A-Z 0-9 _")
        check_category_code(category)
    if heartbeat_seconds < 0 or heartbeat_seconds > 7 * 86400:
        raise InvalidArgument("heartbeat_seconds is between 0 (none) and 604800 (a week)")
    if heartbeat_seconds and SILENT not in alarm_map:
        raise InvalidArgument(f"a device with a heartbeat maps {SILENT} (it has gone silent) to a category")
    return DeviceDraft(id_, kind, float(lon), float(lat), department_code, dict(alarm_map), int(heartbeat_seconds))


def topic_of(device_id: str, what: str = "alarm") -> str:
    """The MQTT topic a device publishes to; the broker lets it publish there and nowhere else."""
    return f"sensors/{device_id}/{what}"


def parse_message(routing_key: str, body: bytes, now: datetime) -> tuple[str, Alarm | None]:
    """(device id, alarm) from an MQTT message as RabbitMQ routes it (topic / becomes .); a
    heartbeat has no alarm. Raises Malformed with the reason."""
    parts = routing_key.split(".")
    if len(parts) != 3 or parts[0] != "sensors" or parts[2] not in ("alarm", "heartbeat"):
        raise Malformed(f"topic {routing_key!r} is not sensors/<device>/alarm or sensors/<device>/heartbeat")
    device_id, what = parts[1], parts[2]
    if what == "heartbeat":
        return device_id, None
    if len(body) > MAX_PAYLOAD_BYTES:
        raise Malformed(f"payload of {len(body)} bytes is over {MAX_PAYLOAD_BYTES}")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed(f"payload is not JSON: {exc}") from None
    except RecursionError:
        raise Malformed("payload is nested too deeply") from None
    if not isinstance(doc, dict):
        raise Malformed("payload is not a JSON object")
    code = doc.get("code")
    if not isinstance(code, str) or not ALARM_CODE.fullmatch(code):
        raise Malformed(f"code {code!r} is not 1-32 of A-Z 0-9 _")
    at = now
    if "at" in doc:
        try:
            at = datetime.fromisoformat(str(doc["at"]))
        except ValueError:
            raise Malformed(f"at {doc['at']!r} is not an ISO 8601 time") from None
        if at.tzinfo is None:
            raise Malformed("at must carry a time zone")
        if at > now + MAX_CLOCK_SKEW:
            raise Malformed(f"at {doc['at']} is in the future")
    value = doc.get("value")
    if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                  and math.isfinite(value)):
        raise Malformed(f"value {value!r} is not a number")
    message = doc.get("message", "")
    if not isinstance(message, str) or len(message) > 500:
        raise Malformed("message is not a string of at most 500 characters")
    return device_id, Alarm(device_id, code, at, None if value is None else float(value), message)


def category_of(alarm_map: dict[str, str], code: str) -> str:
    try:
        return alarm_map[code]
    except KeyError:
        raise Malformed(f"the device maps no category to alarm code {code}") from None


def collapse_window(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def is_silent(last_seen_at: datetime | None, registered_at: datetime, heartbeat_seconds: int, now: datetime) -> bool:
    """Silent: no message for longer than its heartbeat (counted from registration if none ever came)."""
    if not heartbeat_seconds:
        return False
    return now - (last_seen_at or registered_at) > timedelta(seconds=heartbeat_seconds)


def plan_decision(p: Principal, decision: str, status: str, lineage: list[str], reason: str) -> str:
    """The status after a decision on a suspected case; raises when it is not allowed."""
    if decision not in DECISIONS:
        raise InvalidArgument(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    after, roles = DECISIONS[decision]
    auth.require_role(p, *roles, auth.SERVICE)
    auth.require_scope(p, lineage, "this device")
    if status != PENDING:
        raise FailedPrecondition(f"this suspected case is {status} already")
    if decision == "dismiss" and not (reason or "").strip():
        raise InvalidArgument("say why it is dismissed (reason)")
    return after


def may_manage_devices(p: Principal, lineage: list[str]) -> None:
    # a service: an operator's command (shared/cli.py)
    shared_access.require(access.MANAGE, p, units_=list(lineage[-1:]) or None, what="this location")


def may_review(p: Principal) -> None:
    auth.require_role(p, auth.OFFICER, auth.DISPATCHER, auth.ADMIN, auth.SERVICE)
