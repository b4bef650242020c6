"""Grid rules: coordinates, GeoJSON features, members and who may do what.

Plain Python, no I/O. Unit codes (a code alone tells its level and ancestors) are
shared/units.py's, as every service reads them."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from services.grid import access
from shared import access as shared_access, auth, datum
from shared.auth import Principal
from shared.datum import Datum
from shared.errors import InvalidArgument, PermissionDenied, ResourceExhausted
from shared.units import CITY, DISTRICT, GRID, LEVELS, STREET, level_of, lineage, parent_of

MAX_NAME = 128
MAX_LOCATE_MANY = 1000
MAX_FEATURES = 200_000
MAX_VERTICES_PER_FEATURE = 100_000


def check_point(lon: float, lat: float) -> tuple[float, float]:
    for name, value, bound in (("lon", lon, 180.0), ("lat", lat, 90.0)):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InvalidArgument(f"{name} must be a number")
        if not math.isfinite(value):
            raise InvalidArgument(f"{name} must be finite, got {value}")
        if not -bound <= value <= bound:
            raise InvalidArgument(f"{name} {value} is out of range [-{bound:g}, {bound:g}]")
    return float(lon), float(lat)


def to_wgs84(lon: float, lat: float, in_datum: Datum) -> tuple[float, float]:
    """A point as sent, checked, then converted to WGS 84 and checked again (a datum's shift
    can carry a point near the antimeridian out of range)."""
    lon, lat = check_point(lon, lat)
    return check_point(*datum.to_wgs84(in_datum, lon, lat))


def many_to_wgs84(lons: Sequence[float], lats: Sequence[float], datums: Sequence[Datum | None]
                  ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """to_wgs84 for a batch, converting each datum's points together. Returns the WGS 84
    coordinates and, by position, why each bad point was refused (a datum of None is unknown)."""
    if len(lons) > MAX_LOCATE_MANY:
        raise ResourceExhausted(f"{len(lons)} points; at most {MAX_LOCATE_MANY} in one call")
    lons, lats = np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)

    def in_range(x, y):
        return np.isfinite(x) & np.isfinite(y) & (np.abs(x) <= 180.0) & (np.abs(y) <= 90.0)

    good = in_range(lons, lats)
    out_lon, out_lat = lons.copy(), lats.copy()
    for d in set(datums) - {Datum.WGS84, Datum.CGCS2000}:  # the unknown (None) and the shifted ones
        chosen = np.fromiter((x is d for x in datums), dtype=bool, count=len(datums))
        if d is None:
            good &= ~chosen
            continue
        chosen &= good
        if chosen.any():
            out_lon[chosen], out_lat[chosen] = datum.to_wgs84(d, lons[chosen], lats[chosen])
    good &= in_range(out_lon, out_lat)
    refused: dict[int, str] = {}
    for i in np.flatnonzero(~good).tolist():
        if datums[i] is None:
            refused[i] = f"datum is not one of {', '.join(d.name for d in Datum)}"
            continue
        try:
            to_wgs84(lons[i], lats[i], datums[i])
        except InvalidArgument as exc:
            refused[i] = exc.message
    return out_lon, out_lat, refused


# --- import: features, options, and what an import adjusts -----------------------------------

DEFAULT_TOLERANCE_M = 0.5
MAX_TOLERANCE_M = 100.0


@dataclass(frozen=True)
class ImportOptions:
    """How one import reads its features and judges their geometry.

    tolerance_m separates floating-point noise from errors: a child may stick out of its parent,
    and siblings may overlap, by no more than this many metres (see the grid README)."""
    tolerance_m: float = DEFAULT_TOLERANCE_M
    repair: bool = False        # repair invalid rings (ST_MakeValid) instead of refusing them
    code_field: str = "code"    # the feature property holding the unit code
    name_field: str = "name"    # ...and its name

    def __post_init__(self):
        t = self.tolerance_m
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t) \
                or not 0 <= t <= MAX_TOLERANCE_M:
            raise InvalidArgument(f"tolerance must be between 0 and {MAX_TOLERANCE_M:g} m, got {t!r}")
        for option, value in (("code field", self.code_field), ("name field", self.name_field)):
            if not isinstance(value, str) or not value.strip():
                raise InvalidArgument(f"the {option} must be a property name")


# What an import may change in a feature, and how the summary says it. An adjustment is never
# larger than the tolerance allows; anything larger is refused instead.
CLIPPED, OVERLAP, REPAIRED, SLIVER, GAP = "clipped", "overlap", "repaired", "sliver", "gap"
# The area column of the summary is what each kind removed, changed or found.
ADJUSTMENT_KINDS = {
    CLIPPED: "clipped to its parent {other}",
    OVERLAP: "overlap with sibling {other} removed, left to {other}",
    REPAIRED: "invalid ring repaired ({detail}); area changed by",
    SLIVER: "has parts narrower than the tolerance (kept)",
    GAP: "its children leave gaps narrower than the tolerance (kept)",
}


@dataclass(frozen=True)
class Adjustment:
    index: int          # the feature's position in the input
    code: str
    kind: str           # one of ADJUSTMENT_KINDS
    area_m2: float      # the area removed, changed or reported
    other_code: str = ""  # the parent it was clipped to, the sibling given the overlap
    detail: str = ""      # the reason a ring was invalid

    def describe(self) -> str:
        return ADJUSTMENT_KINDS[self.kind].format(other=self.other_code, detail=self.detail)


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


def _text(value) -> str:
    """A property as text; boundary files often store codes as numbers (130102 or 130102.0)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()


def _property(props: dict, field: str, what: str, where: str) -> str:
    if field not in props:
        fields = ", ".join(props) or "none"
        raise InvalidArgument(f"{where}: no property {field!r} for the {what} (its properties: {fields}); "
                              f"name the right one with --{what}-field")
    return _text(props[field])


def parse_feature(index: int, feature, options: ImportOptions = ImportOptions()) -> UnitDraft:
    where = f"feature {index}"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise InvalidArgument(f"{where}: not a GeoJSON Feature")
    props = feature.get("properties") or {}
    code = _property(props, options.code_field, "code", where)
    try:
        level = level_of(code)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: {exc.message}")
    declared = props.get("level")
    if declared is not None and declared != level:
        raise InvalidArgument(f"{where}: code {code} is a {level}, but level says {declared!r}")
    name = _property(props, options.name_field, "name", where)
    if not name or len(name) > MAX_NAME:
        raise InvalidArgument(f"{where}: name must be 1 to {MAX_NAME} characters")
    where = f"{where} ({code})"
    return UnitDraft(index, code, level, name, parent_of(code),
                     _as_multipolygon(feature.get("geometry"), where))


def parse_feature_collection(doc, options: ImportOptions = ImportOptions()) -> list[UnitDraft]:
    """Checks the structure of every feature; geometry validity is PostGIS's to judge."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InvalidArgument("input must be a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise InvalidArgument("the FeatureCollection has no features")
    if len(features) > MAX_FEATURES:
        raise InvalidArgument(f"{len(features)} features, at most {MAX_FEATURES} in one import")
    drafts = [parse_feature(i, f, options) for i, f in enumerate(features)]
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

def may_read_unit(p: Principal, code: str, rule=access.READ_UNIT) -> None:
    shared_access.require(rule, p, units_=[code], what=f"unit {code}")


def may_manage_unit(p: Principal, code: str) -> None:
    shared_access.require(access.IMPORT_UNITS, p, units_=[code], what=f"unit {code}")


def may_read_member(p: Principal, member_id: str, assigned_codes: list[str]) -> None:
    if p.member_id == member_id:
        return  # anyone may read themselves
    # A dispatcher sees the members assigned within their scope; an admin also the members not
    # yet assigned anywhere, to assign them.
    shared_access.require(access.READ_MEMBER, p, units_=assigned_codes, owner=member_id,
                          what=f"member {member_id}", any_unit=p.role != auth.ADMIN)


def may_update_member(p: Principal, member_id: str, changes: set[str], assigned_codes: list[str]) -> None:
    """An admin changes the members whose every grid lies in their district; a member sets
    only their own on-duty state."""
    if shared_access.scope_of(access.UPDATE_MEMBER, p) == shared_access.OWN_RECORD and not changes <= {"on_duty"}:
        raise PermissionDenied("only an admin changes members (you may set your own on-duty state)")
    shared_access.require(access.UPDATE_MEMBER, p, units_=assigned_codes, owner=member_id,
                          what=f"member {member_id}")


def may_assign(p: Principal, member_id: str, grid_code: str, assigned_codes: list[str]) -> None:
    """The grid, and every grid the member works in already, lie in the admin's district: an
    admin never takes another district's member into their own grids."""
    shared_access.require(access.ASSIGN_MEMBER, p, units_=[grid_code], what=f"unit {grid_code}")
    shared_access.require(access.ASSIGN_MEMBER, p, units_=assigned_codes, what=f"member {member_id}")


def may_report_position(p: Principal, member_id: str) -> None:
    shared_access.require(access.REPORT_POSITION, p, owner=member_id, what="this position (a member reports only "
                          "their own)")


def mask_for(p: Principal, member_id: str, phone: str) -> str:
    from shared.privacy import mask_phone
    return phone if p.role == auth.ADMIN or p.member_id == member_id else mask_phone(phone)
