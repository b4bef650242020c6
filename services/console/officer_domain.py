"""The officer's app's rules, pure: the shape of what the phone sends (a report, a position, an
action on a case, a declined alert's reason), which of the officer's cases go in which list of
their day, and what of an emergency alert the phone is shown. The incidents, grid and emergencies
services check the content again (and decide); this only turns JSON into their fields, with a
typed error naming the field that is wrong."""
from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone

from services.console.attachments.store import note_with_photos, photos_in_note, sha_of_uri  # noqa: F401
from services.incidents.domain import OPEN_STATUSES, REJECTED, RESOLVED
from shared.errors import InvalidArgument

ATTACHMENT_FIELDS = ("sha256", "size_bytes", "media_type", "uri")
# The officer's actions on a case and what each needs; verify and reopen may carry on-site photos.
CASE_ACTIONS = {"verify": (), "reopen": ("note",), "resubmit": ()}
MAX_CASE_PHOTOS = 3
# The day's lists: what waits for the officer first.
LISTS = ("verify", "rework", "open")


def _text(body: dict, key: str, *, required: bool = True) -> str:
    value = body.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidArgument(f"{key} is required (text)")
    return value.strip()


def _number(body: dict, key: str) -> float:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"{key} must be a number")
    return float(value)


def _when(raw) -> datetime:
    if not isinstance(raw, str):
        raise InvalidArgument("occurred_at must be an ISO 8601 time")
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"occurred_at {raw!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise InvalidArgument("occurred_at needs its UTC offset")
    return when.astimezone(timezone.utc)


def attachments_of(body: dict, limit: int | None = None) -> list[dict]:
    items = body.get("attachments", [])
    if not isinstance(items, list) or not all(isinstance(a, dict) for a in items):
        raise InvalidArgument("attachments must be a list of the store's answers")
    if limit is not None and len(items) > limit:
        raise InvalidArgument(f"at most {limit} photos")
    out = []
    for i, a in enumerate(items):
        if not all(k in a for k in ATTACHMENT_FIELDS):
            raise InvalidArgument(f"attachment {i} needs {', '.join(ATTACHMENT_FIELDS)}")
        if not isinstance(a["size_bytes"], int) or isinstance(a["size_bytes"], bool):
            raise InvalidArgument(f"attachment {i}: size_bytes must be a whole number")
        out.append({k: a[k] if k == "size_bytes" else str(a[k]) for k in ATTACHMENT_FIELDS})
    return out


def parse_report(body: dict) -> dict:
    """A report as the phone sends it: its report_id made when the officer pressed send."""
    report_id = _text(body, "report_id")
    try:
        uuid.UUID(report_id)
    except ValueError:
        raise InvalidArgument("report_id must be a UUID made on the phone") from None
    location = body.get("location")
    if not isinstance(location, dict):
        raise InvalidArgument("location is required: lon, lat and accuracy_m")
    return {"report_id": report_id, "category_code": _text(body, "category_code"), "title": _text(body, "title"),
            "description": _text(body, "description", required=False), "occurred_at": _when(body.get("occurred_at")),
            "location": {k: _number(location, k) for k in ("lon", "lat", "accuracy_m")},
            "attachments": attachments_of(body)}


def parse_position(body: dict) -> tuple[float, float]:
    return _number(body, "lon"), _number(body, "lat")


def parse_case_action(name: str, body: dict) -> dict:
    """An action on a case: its version as seen, the note it needs, and on-site photos."""
    if name not in CASE_ACTIONS:
        raise InvalidArgument(f"the app takes {', '.join(CASE_ACTIONS)}, not {name!r}")
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidArgument("version is required: the version of the case you saw")
    note = _text(body, "note", required="note" in CASE_ACTIONS[name])
    photos = attachments_of(body, MAX_CASE_PHOTOS)
    if any(sha_of_uri(p["uri"]) is None for p in photos):
        raise InvalidArgument("on-site photos must be in gridbus's store (upload them first)")
    return {"version": version, "note": note, "photos": photos}


def list_of(incident: dict, member_id: str) -> str | None:
    """Which list of the officer's day a case of their grids goes in, if any: resolved cases to
    verify on site, their own reports sent back for rework, their own open reports."""
    if incident["status"] == RESOLVED:
        return "verify"
    if incident["reporter_id"] != member_id:
        return None
    if incident["status"] == REJECTED:
        return "rework"
    return "open" if incident["status"] in OPEN_STATUSES else None


# --- emergency alerts --------------------------------------------------------------------------

MAX_DECLINE_REASON = 200
# A notice's type, as the alert's state the phone shows.
NOTICE_STATUS = {"emergencies.alert.sent": "open", "emergencies.alert.accepted": "accepted",
                 "emergencies.alert.withdrawn": "withdrawn"}
ALERT_FIELDS = ("id", "incident_id", "category", "title", "lon", "lat", "stage", "status", "accepted_by_name")


def alert_for(member_id: str, alert: dict) -> dict:
    """An alert as its officer sees it: the case, the place, whether it is still open, who took
    it, and their own distance and answer; never the other officers it reached."""
    mine = next((r for r in alert["recipients"] if r["member_id"] == member_id), None)
    return {**{k: alert[k] for k in ALERT_FIELDS}, "taken_by_me": alert["accepted_by"] == member_id,
            "distance_m": mine["distance_m"] if mine else None, "answer": mine["answer"] if mine else None,
            "reason": None}


def alert_from_notice(member_id: str, notice: dict) -> dict | None:
    """The same shape from the stream's notice (sent, accepted or withdrawn), or None for a kind
    the phone has no use for."""
    status = NOTICE_STATUS.get(notice["type"])
    if status is None:
        return None
    return {"id": notice["alert_id"], **{k: notice[k] for k in ALERT_FIELDS[1:7]}, "status": status,
            "accepted_by_name": notice["accepted_by_name"], "taken_by_me": notice["accepted_by"] == member_id,
            "distance_m": notice["distance_m"] if status == "open" else None, "answer": None,
            "reason": notice["reason"]}


def parse_decline(body: dict) -> str:
    reason = _text(body, "reason", required=False)
    if len(reason) > MAX_DECLINE_REASON:
        raise InvalidArgument(f"reason: at most {MAX_DECLINE_REASON} characters")
    return reason
