"""Grid rules: codes, levels, coordinates, GeoJSON features, members and who may do what.

Plain Python, no I/O.

Unit codes follow GB/T 30428.1 unit-grid coding: the 6-digit county-level administrative
code, then 3 digits of street, 3 of community and 3 of grid sequence. The city's code is its
prefecture code (the county code's first 4 digits and "00"). So a code alone tells a unit's
level and all its ancestors:

    city 330100 > district 330106 > street 330106001 > community 330106001002 > grid 330106001002003
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from shared import auth
from shared.auth import Principal
from shared.errors import InvalidArgument, PermissionDenied

CITY, DISTRICT, STREET, COMMUNITY, GRID = "city", "district", "street", "community", "grid"
LEVELS = (CITY, DISTRICT, STREET, COMMUNITY, GRID)
_CODE_LENGTH = {9: STREET, 12: COMMUNITY, 15: GRID}
_DIGITS = re.compile(r"[0-9]+")

MAX_NAME = 128
MAX_FEATURES = 200_000
MAX_VERTICES_PER_FEATURE = 100_000


def level_of(code: str) -> str:
    """The level a code names; InvalidArgument when it is no unit code."""
    if not isinstance(code, str) or not _DIGITS.fullmatch(code or ""):
        raise InvalidArgument(f"unit code {code!r} must be digits only")
    if len(code) == 6:
        if code[:2] == "00":
            raise InvalidArgument(f"unit code {code!r} has no province part")
        return CITY if code.endswith("00") else DISTRICT
    level = _CODE_LENGTH.get(len(code))
    if level is None:
        raise InvalidArgument(f"unit code {code!r} must have 6, 9, 12 or 15 digits")
    if code[-3:] == "000":
        raise InvalidArgument(f"unit code {code!r}: sequence numbers start at 001")
    if code[4:6] == "00":
        raise InvalidArgument(f"unit code {code!r} does not start with a county-level code")
    return level


def parent_of(code: str) -> str | None:
    level = level_of(code)
    if level == CITY:
        return None
    if level == DISTRICT:
        return code[:4] + "00"
    return code[:-3]


def lineage(code: str) -> list[str]:
    """Ancestors from the city down, then the unit itself."""
    chain = [code]
    parent = parent_of(code)
    while parent is not None:
        chain.append(parent)
        parent = parent_of(parent)
    return chain[::-1]


def ancestors(code: str) -> list[str]:
    return lineage(code)[:-1]


def check_point(lon: float, lat: float) -> tuple[float, float]:
    for name, value, bound in (("lon", lon, 180.0), ("lat", lat, 90.0)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InvalidArgument(f"{name} must be a number")
        if not math.isfinite(value):
            raise InvalidArgument(f"{name} must be finite, got {value}")
        if not -bound <= value <= bound:
            raise InvalidArgument(f"{name} {value} is out of range [-{bound:g}, {bound:g}]")
    return float(lon), float(lat)


# --- GeoJSON import -------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitDraft:
    index: int           # position in the FeatureCollection, for error messages
    code: str
    level: str
    name: str
    parent_code: str | None
    geometry: dict       # a GeoJSON MultiPolygon


def _check_ring(ring, where: str) -> int:
    if not isinstance(ring, list) or len(ring) < 4:
        raise InvalidArgument(f"{where}: a ring needs at least 4 positions")
    for pos in ring:
        if not isinstance(pos, list) or len(pos) < 2:
            raise InvalidArgument(f"{where}: a position must be [lon, lat]")
        try:
            check_point(pos[0], pos[1])
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where}: {exc.message}")
    if ring[0][:2] != ring[-1][:2]:
        raise InvalidArgument(f"{where}: a ring must end where it starts")
    return len(ring)


def _as_multipolygon(geometry, where: str) -> dict:
    if not isinstance(geometry, dict):
        raise InvalidArgument(f"{where}: geometry missing")
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [coords]
    elif kind == "MultiPolygon":
        polygons = coords
    else:
        raise InvalidArgument(f"{where}: geometry must be a Polygon or MultiPolygon, got {kind!r}")
    if not isinstance(polygons, list) or not polygons:
        raise InvalidArgument(f"{where}: geometry has no coordinates")
    vertices = 0
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise InvalidArgument(f"{where}: a polygon needs at least one ring")
        vertices += sum(_check_ring(ring, where) for ring in polygon)
    if vertices > MAX_VERTICES_PER_FEATURE:
        raise InvalidArgument(f"{where}: {vertices} vertices, at most {MAX_VERTICES_PER_FEATURE}")
    return {"type": "MultiPolygon", "coordinates": polygons}


def parse_feature(index: int, feature) -> UnitDraft:
    where = f"feature {index}"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise InvalidArgument(f"{where}: not a GeoJSON Feature")
    props = feature.get("properties") or {}
    code = str(props.get("code", "")).strip()
    try:
        level = level_of(code)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: {exc.message}")
    declared = props.get("level")
    if declared is not None and declared != level:
        raise InvalidArgument(f"{where}: code {code} is a {level}, but level says {declared!r}")
    name = str(props.get("name", "")).strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidArgument(f"{where}: name must be 1 to {MAX_NAME} characters")
    where = f"{where} ({code})"
    return UnitDraft(index, code, level, name, parent_of(code),
                     _as_multipolygon(feature.get("geometry"), where))


def parse_feature_collection(doc) -> list[UnitDraft]:
    """Checks the structure of every feature; geometry validity is PostGIS's to judge."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InvalidArgument("input must be a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise InvalidArgument("the FeatureCollection has no features")
    if len(features) > MAX_FEATURES:
        raise InvalidArgument(f"{len(features)} features, at most {MAX_FEATURES} in one import")
    drafts = [parse_feature(i, f) for i, f in enumerate(features)]
    seen: dict[str, int] = {}
    for d in drafts:
        if d.code in seen:
            raise InvalidArgument(f"feature {d.index}: code {d.code} repeats feature {seen[d.code]}")
        seen[d.code] = d.index
    # Parents first, so each unit can be checked against its parent in the same import.
    return sorted(drafts, key=lambda d: LEVELS.index(d.level))


# --- members ----------------------------------------------------------------------------------

ROLES = (auth.OFFICER, auth.DISPATCHER, auth.ADMIN)
# Where each role may be assigned: officers patrol grids, dispatchers run a district (or a
# street in large districts; a shift leader the whole city), admins manage a city or a district.
ASSIGNABLE_LEVELS = {auth.OFFICER: (GRID,), auth.DISPATCHER: (CITY, DISTRICT, STREET),
                     auth.ADMIN: (CITY, DISTRICT)}
_PHONE = re.compile(r"\+?[0-9]{5,20}")


def check_member_fields(name: str | None = None, phone: str | None = None, role: str | None = None) -> None:
    if name is not None and not (0 < len(name.strip()) <= MAX_NAME):
        raise InvalidArgument(f"name must be 1 to {MAX_NAME} characters")
    if phone is not None and not _PHONE.fullmatch(phone):
        raise InvalidArgument("phone must be 5 to 20 digits, optionally after '+'")
    if role is not None and role not in ROLES:
        raise InvalidArgument(f"role must be one of {', '.join(ROLES)}")


def check_assignable(role: str, grid_code: str) -> None:
    level = level_of(grid_code)
    if level not in ASSIGNABLE_LEVELS[role]:
        allowed = " or ".join(ASSIGNABLE_LEVELS[role])
        raise InvalidArgument(f"a {role} is assigned to a {allowed}, not a {level} ({grid_code})")


# --- who may do what --------------------------------------------------------------------------

def may_read_unit(p: Principal, code: str) -> None:
    auth.require_role(p, auth.ADMIN, auth.DISPATCHER, auth.OFFICER, auth.SERVICE)
    auth.require_scope(p, lineage(code), f"unit {code}")


def may_manage_unit(p: Principal, code: str) -> None:
    auth.require_role(p, auth.ADMIN)
    auth.require_scope(p, lineage(code), f"unit {code}")


def may_manage_members(p: Principal) -> None:
    auth.require_role(p, auth.ADMIN)


def may_read_member(p: Principal, member_id: str, assigned_codes: list[str]) -> None:
    if p.role == auth.SERVICE or p.member_id == member_id:
        return
    auth.require_role(p, auth.ADMIN, auth.DISPATCHER)
    if p.role == auth.DISPATCHER or assigned_codes:
        # An admin or dispatcher sees the members assigned within their scope (admins also
        # see members not yet assigned anywhere, to assign them).
        if not any(p.covers(lineage(c)) for c in assigned_codes):
            raise PermissionDenied(f"member {member_id} works outside your grids")


def may_update_member(p: Principal, member_id: str, changes: set[str]) -> None:
    if p.role == auth.ADMIN:
        return
    if p.member_id == member_id and changes <= {"on_duty"}:
        return  # an officer goes on and off duty themselves
    raise PermissionDenied("only an admin changes members (you may set your own on-duty state)")


def may_report_position(p: Principal, member_id: str) -> None:
    if p.member_id != member_id:
        raise PermissionDenied("a member reports only their own position")


def mask_for(p: Principal, member_id: str, phone: str) -> str:
    from shared.privacy import mask_phone
    return phone if p.role == auth.ADMIN or p.member_id == member_id else mask_phone(phone)
