"""What a report must hold to be taken in: limits, the checks of each field, and who may report where.

Plain Python, no I/O. The lifecycle that follows is in domain.py.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared import auth, datum
from shared.auth import Principal
from shared.datum import Datum
from shared.errors import InvalidArgument
from shared.ids import parse_uuid

# Input limits (documented in the README and the proto).
MAX_TITLE = 120
MAX_DESCRIPTION = 4000
MAX_ATTACHMENTS = 9
MAX_ATTACHMENT_BYTES = 200 * 1024 * 1024
MAX_URI = 2048
MAX_ACCURACY_M = 5000.0
CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)  # an offline queue older than this is stale
MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/heic", "image/webp", "video/mp4",
                         "video/quicktime", "audio/aac", "audio/mpeg", "audio/amr"})
# gridbus://attachments/<sha256>: a photo in gridbus's own attachment store (services/console/attachments).
URI_SCHEMES = ("https://", "s3://", "oss://", "gridbus://attachments/")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CATEGORY = re.compile(r"[0-9A-Za-z]{2,16}")
_DEPARTMENT = re.compile(r"[0-9A-Za-z_.-]{1,64}")
SUBJECT_TYPES = ("enterprise", "person")


@dataclass(frozen=True)
class Attachment:
    sha256: str
    size_bytes: int
    media_type: str
    uri: str


@dataclass(frozen=True)
class Subject:
    type: str  # enterprise: ref is its unified social credit code; person: the registry's id
    ref: str


@dataclass(frozen=True)
class Draft:
    """A checked report, before it is pinned to a grid."""
    report_id: str
    category_code: str
    title: str
    description: str
    lon: float
    lat: float
    accuracy_m: float
    occurred_at: datetime
    attachments: tuple[Attachment, ...] = ()
    subject: Subject | None = None
    time_given: bool = True  # False: the gateway stamped occurred_at; a retry gets another stamp
    datum: Datum = Datum.WGS84  # what the phone sent: (sent_lon, sent_lat) in this datum; lon, lat are WGS 84
    sent_lon: float = 0.0
    sent_lat: float = 0.0

    def content_hash(self) -> str:
        """Same report id with the same content is a retry; with other content, a conflict."""
        body = {
            "category": self.category_code, "title": self.title, "description": self.description,
            "lon": round(self.lon, 7), "lat": round(self.lat, 7), "accuracy": round(self.accuracy_m, 1),
            "occurred_at": self.occurred_at.astimezone(timezone.utc).isoformat() if self.time_given else None,
            "attachments": [a.__dict__ for a in self.attachments],
            "subject": self.subject.__dict__ if self.subject else None,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def check_point(lon: float, lat: float, accuracy_m: float) -> None:
    for name, v in (("lon", lon), ("lat", lat), ("accuracy_m", accuracy_m)):
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InvalidArgument(f"{name} must be a finite number, got {v!r}")
    if not -180.0 <= lon <= 180.0:
        raise InvalidArgument(f"lon {lon} is outside -180..180")
    if not -90.0 <= lat <= 90.0:
        raise InvalidArgument(f"lat {lat} is outside -90..90")
    if lon == 0.0 and lat == 0.0:
        raise InvalidArgument("location 0,0 is a phone without a fix, not a place")
    if not 0.0 <= accuracy_m <= MAX_ACCURACY_M:
        raise InvalidArgument(f"accuracy_m {accuracy_m} must be between 0 and {MAX_ACCURACY_M:g} metres")


def to_wgs84(lon: float, lat: float, in_datum: Datum) -> tuple[float, float]:
    """A checked point in `in_datum` as WGS 84 (shared/datum.py), checked again: a datum's shift
    can carry a point near the edge of the range out of it."""
    if not isinstance(in_datum, Datum):
        raise InvalidArgument(f"datum {in_datum!r} is not one of {', '.join(d.value for d in Datum)}")
    wgs_lon, wgs_lat = datum.to_wgs84(in_datum, float(lon), float(lat))
    if not (-180.0 <= wgs_lon <= 180.0 and -90.0 <= wgs_lat <= 90.0):
        raise InvalidArgument(f"({lon}, {lat}) in {in_datum.value} is ({wgs_lon:.7f}, {wgs_lat:.7f}) in WGS 84, "
                              "outside -180..180, -90..90")
    return wgs_lon, wgs_lat


def check_text(value: str, what: str, limit: int, *, required: bool) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidArgument(f"{what} is required")
    if len(value) > limit:
        raise InvalidArgument(f"{what} has {len(value)} characters; at most {limit}")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise InvalidArgument(f"{what} holds control characters")
    return value


def check_category_code(code: str) -> str:
    if not _CATEGORY.fullmatch(code or ""):
        raise InvalidArgument(f"category code {code!r} must be 2-16 letters or digits")
    return code


def check_department_code(code: str) -> str:
    if not _DEPARTMENT.fullmatch(code or ""):
        raise InvalidArgument(f"department code {code!r} is not valid")
    return code


def check_attachments(items) -> tuple[Attachment, ...]:
    items = list(items)
    if len(items) > MAX_ATTACHMENTS:
        raise InvalidArgument(f"{len(items)} attachments; at most {MAX_ATTACHMENTS}")
    out = []
    for i, a in enumerate(items):
        where = f"attachment {i}"
        if not _SHA256.fullmatch(a.sha256 or ""):
            raise InvalidArgument(f"{where}: sha256 must be 64 lowercase hex digits")
        if not 0 < a.size_bytes <= MAX_ATTACHMENT_BYTES:
            raise InvalidArgument(f"{where}: size_bytes must be 1..{MAX_ATTACHMENT_BYTES}")
        if a.media_type not in MEDIA_TYPES:
            raise InvalidArgument(f"{where}: media type {a.media_type!r} is not one of {sorted(MEDIA_TYPES)}")
        if not a.uri.startswith(URI_SCHEMES) or len(a.uri) > MAX_URI:
            raise InvalidArgument(f"{where}: uri must start with {', '.join(URI_SCHEMES)} and be "
                                  f"at most {MAX_URI} characters (files are uploaded elsewhere, not sent here)")
        out.append(Attachment(a.sha256, a.size_bytes, a.media_type, a.uri))
    return tuple(out)


def check_subject(type_: str, ref: str) -> Subject | None:
    if not type_ and not ref:
        return None
    if type_ not in SUBJECT_TYPES:
        raise InvalidArgument(f"subject type {type_!r} must be one of {', '.join(SUBJECT_TYPES)}")
    if type_ == "enterprise":
        if not re.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{18}", ref or ""):
            raise InvalidArgument("an enterprise subject is named by its 18-character unified social credit code")
    else:
        # A person is named by the credit registry's id, never by an identity number.
        parse_uuid(ref, "person subject id")
    return Subject(type_, ref)


def check_occurred_at(when: datetime, now: datetime) -> datetime:
    if when.tzinfo is None:
        raise InvalidArgument("occurred_at must carry a time zone")
    if when > now + CLOCK_SKEW:
        raise InvalidArgument(f"occurred_at {when.isoformat()} is in the future (clock skew allowed: "
                              f"{int(CLOCK_SKEW.total_seconds())} s)")
    if when < now - MAX_AGE:
        raise InvalidArgument(f"occurred_at {when.isoformat()} is older than {MAX_AGE.days} days")
    return when


def make_draft(*, report_id: str, category_code: str, title: str, description: str, lon: float,
               lat: float, accuracy_m: float, occurred_at: datetime | None, attachments=(),
               subject_type: str = "", subject_ref: str = "", now: datetime,
               stamp_missing_time: bool = False, in_datum: Datum = Datum.WGS84) -> Draft:
    """stamp_missing_time: a gateway whose clients send no time (Open311) reports "now".
    in_datum: the datum of (lon, lat); the draft holds the point as WGS 84 and as sent."""
    time_given = occurred_at is not None
    if not time_given:
        if not stamp_missing_time:
            raise InvalidArgument("occurred_at is required")
        occurred_at = now
    check_point(lon, lat, accuracy_m)
    wgs_lon, wgs_lat = to_wgs84(lon, lat, in_datum)
    return Draft(
        report_id=str(parse_uuid(report_id, "report_id")),
        category_code=check_category_code(category_code),
        title=check_text(title, "title", MAX_TITLE, required=True),
        description=check_text(description, "description", MAX_DESCRIPTION, required=False),
        lon=wgs_lon, lat=wgs_lat, accuracy_m=float(accuracy_m),
        occurred_at=check_occurred_at(occurred_at, now),
        attachments=check_attachments(attachments),
        subject=check_subject(subject_type, subject_ref),
        time_given=time_given, datum=in_datum, sent_lon=float(lon), sent_lat=float(lat),
    )


def may_report(p: Principal, lineage: list[str]) -> None:
    # Officers report in their own grids; the Open311 gateway reports for citizens as a service.
    auth.require_role(p, auth.OFFICER, auth.SERVICE)
    auth.require_scope(p, lineage, "this location")
