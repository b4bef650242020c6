"""Open311 GeoReport v2 <-> gridbus incidents. Plain Python, no I/O.

GeoReport v2: http://wiki.open311.org/GeoReport_v2. Services are the leaf categories of the
incident catalogue; a service request is an incident; `open` is every state before closed or
rejected."""
from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

from services.incidents import domain, report_rules
from shared import datum
from shared.errors import InvalidArgument
from shared.ids import parse_uuid
from shared.timefmt import iso_utc

SPEC = "http://wiki.open311.org/GeoReport_v2"
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
MAX_RESULTS = 1000
# Reports from Open311 clients carry no accuracy; 0 means "unknown" to dispatchers.
UNKNOWN_ACCURACY_M = 0.0
_NAMESPACE = uuid.UUID("6b1f0c2e-3a5d-4c1e-9b7a-0d2c4e6f8a10")


def service_list(categories) -> list[dict]:
    names = {c.code: c.name for c in categories}
    return [{"service_code": c.code, "service_name": c.name, "description": c.name,
             "metadata": False, "type": "realtime", "keywords": "",
             "group": names.get(c.parent_code, "")}
            for c in categories if c.active and c.parent_code]


def service_definition(code: str) -> dict:
    # gridbus asks nothing beyond the standard fields.
    return {"service_code": code, "attributes": []}


def _float(form: dict, key: str) -> float:
    try:
        return float(form[key])
    except KeyError:
        raise InvalidArgument(f"{key} is required: gridbus pins each request to its grid by location")
    except ValueError:
        raise InvalidArgument(f"{key} {form[key]!r} is not a number")


FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 50


def parse_form(body: bytes, content_type: str | None) -> dict[str, str]:
    """A POST body as GeoReport v2 sends it: a URL-encoded form in UTF-8 (the first value of a
    repeated field counts). Anything else is InvalidArgument saying what was expected."""
    media_type = (content_type or FORM_TYPE).split(";")[0].strip().lower()
    if media_type != FORM_TYPE:
        raise InvalidArgument(f"the body must be {FORM_TYPE} (GeoReport v2), not {media_type}")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict",
                          max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise InvalidArgument("the body must be UTF-8 (percent-encoded UTF-8 included)")
    except ValueError:
        raise InvalidArgument(f"the form has more than {MAX_FORM_FIELDS} fields")
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def report_args(form: dict, client: str, idempotency_key: str | None) -> dict:
    """The arguments of incidents' report() for a POST /requests form (Open311 sends no time
    of its own: incidents stamps it, and leaves it out of the retry check)."""
    code = form.get("service_code", "")
    if not code:
        raise InvalidArgument("service_code is required")
    lat, lon = _float(form, "lat"), _float(form, "long")
    # GeoReport v2's lat/long are WGS 84; apps on the Chinese map SDKs send GCJ-02 or BD-09 and say
    # so in `datum` (a gridbus parameter), and the point is converted before it is pinned.
    in_datum = datum.parse(form.get("datum"))
    said = (form.get("description") or "").strip()
    if not said:
        raise InvalidArgument("description is required: say what is wrong")
    description = said
    media = (form.get("media_url") or "").strip()
    if media:
        if not media.startswith(("https://", "http://")):
            raise InvalidArgument("media_url must be an http(s) URL")
        description = f"{description}\n\nmedia: {media}"
    address = (form.get("address_string") or "").strip()
    if address:
        description = f"{description}\n\naddress given: {address}"
    title = said.splitlines()[0].strip()[:report_rules.MAX_TITLE]
    # A client that sends an Idempotency-Key may retry safely; otherwise every POST is new.
    report_id = uuid.uuid5(_NAMESPACE, f"{client}:{idempotency_key}") if idempotency_key else uuid.uuid4()
    return dict(report_id=str(report_id), category_code=code, title=title, description=description,
                lon=lon, lat=lat, accuracy_m=UNKNOWN_ACCURACY_M, occurred_at=None, datum=in_datum)


def _iso(when: datetime | None) -> str:
    """Whole seconds in UTC, or "" for no time (Open311 shows no fractions, and no nulls)."""
    return iso_utc(when.replace(microsecond=0)) if when else ""


def open_or_closed(status: str) -> str:
    return "open" if status in domain.OPEN_STATUSES else "closed"


# What the public reads of a request's progress: a fixed text per state, never staff's notes
# (rejection reasons and resolutions are written for staff).
PUBLIC_STATUS_NOTES = {
    domain.REPORTED: "Received; being routed to the department responsible.",
    domain.DISPATCHED: "With the department responsible.",
    domain.IN_PROGRESS: "The department is working on it.",
    domain.RESOLVED: "Reported as resolved; awaiting a check on site.",
    domain.VERIFIED: "Checked on site; about to be closed.",
    domain.CLOSED: "Closed.",
    domain.REJECTED: "Closed without action.",
    domain.REOPENED: "Reopened for more work.",
    domain.VOIDED: "Closed: filed in error.",
    domain.PARKED: "Deferred; it will be taken up again later.",
}
# Public coordinates are rounded to 4 decimal places: 0.0001 degree is 11.1 m of latitude and
# 11.1 m x cos(latitude) of longitude (9.6 m at 30 N), so a point is shown within about 6 m,
# enough to find the place and too coarse to single out a doorway.
PUBLIC_COORDINATE_DECIMALS = 4


def request_view(incident, category_names: dict, *, own: bool = False) -> dict:
    """What Open311 shows of an incident: no reporter, no subject, no staff notes. Anyone sees
    the state's public text and coordinates rounded (PUBLIC_COORDINATE_DECIMALS); the client
    that submitted it (`own`, by its api_key) sees its exact state and the point it sent."""
    status_notes = PUBLIC_STATUS_NOTES[incident.status]
    lat, lon = incident.lat, incident.lon
    if own:
        status_notes = f"{status_notes} (gridbus status: {incident.status})"
    else:
        lat, lon = round(lat, PUBLIC_COORDINATE_DECIMALS), round(lon, PUBLIC_COORDINATE_DECIMALS)
    return {
        "service_request_id": incident.id,
        "status": open_or_closed(incident.status),
        "status_notes": status_notes,
        "service_name": category_names.get(incident.category_code, ""),
        "service_code": incident.category_code,
        "description": incident.description,
        "agency_responsible": incident.department_code or "",
        "service_notice": "",
        "requested_datetime": _iso(incident.reported_at),
        "updated_datetime": _iso(incident.updated_at),
        "expected_datetime": "",
        "address": "",
        "address_id": "",
        "zipcode": "",
        "lat": lat,
        "long": lon,
        "media_url": "",
    }


def parse_statuses(value: str | None) -> list[str]:
    if not value:
        return []
    out = []
    for s in value.split(","):
        s = s.strip().lower()
        if s == "open":
            out += sorted(domain.OPEN_STATUSES)
        elif s == "closed":
            out += sorted(domain.FINAL_STATUSES)
        else:
            raise InvalidArgument(f"status {s!r} must be open or closed")
    return out


def split_ids(value: str | None) -> list[str]:
    ids = [v.strip() for v in (value or "").split(",") if v.strip()]
    for v in ids:
        parse_uuid(v, "service_request_id")
    return ids


# --- rendering -----------------------------------------------------------------------------

_XML_ROOT = {"services": "service", "service_requests": "request", "errors": "error",
             "discovery": None, "service_definition": None}


def _to_xml(parent: ET.Element, value) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, list):
                holder = ET.SubElement(parent, k)
                for item in v:
                    _to_xml(ET.SubElement(holder, k.rstrip("s") if k != "formats" else "format"), item)
            else:
                _to_xml(ET.SubElement(parent, k), v)
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    elif value is not None:
        parent.text = str(value)


def to_xml(root: str, body) -> bytes:
    el = ET.Element(root)
    if isinstance(body, list):
        for item in body:
            _to_xml(ET.SubElement(el, _XML_ROOT[root]), item)
    else:
        _to_xml(el, body)
    return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(el, encoding="utf-8")

