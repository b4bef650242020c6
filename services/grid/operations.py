"""What the grid service does, called by both entry points (gRPC and nameko).

Each operation checks who is calling, validates, changes the store and records its event,
all in one transaction: a failure anywhere writes nothing."""
from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Sequence

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.grid import access as grid_access
from services.grid import domain, import_store, signin, store
from shared import access as shared_access, auth, units
from shared.auth import Principal
from shared.datum import Datum
from shared.db import engine, session_scope
from shared.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from shared.ids import parse_uuid
from shared.outbox import record_event
from shared.privacy import mask_phone
from shared.spatial import NOWHERE, LiveIndex

SCHEMA = store.SCHEMA
MAX_PAGE = 500
CHANGED_CODES_IN_EVENT = 1000


@dataclass
class UnitView:
    code: str
    level: str
    name: str
    parent_code: str | None
    ancestors: list[str]
    area_m2: float
    updated_at: datetime
    geometry_geojson: str | None = None


@dataclass
class Position:
    lon: float                 # WGS 84
    lat: float
    reported_at: datetime
    sent: tuple[float, float, Datum] | None = None  # as the phone sent it


@dataclass
class Located:
    grid: UnitView
    lon: float                 # the WGS 84 point that was pinned
    lat: float


@dataclass
class LocatedMany:
    """The answers of a locate_many, by position (columns: a batch is a thousand points)."""
    grid_codes: list[str | None]
    lons: list[float]          # the WGS 84 points pinned (meaningless where refused)
    lats: list[float]
    errors: dict[int, InvalidArgument | NotFound]  # the points without a grid, and why


@dataclass
class MemberView:
    id: str
    name: str
    phone: str
    role: str
    active: bool
    on_duty: bool
    version: int
    assignments: list[tuple[str, bool, datetime]] = field(default_factory=list)  # (code, primary, since)
    position: Position | None = None


@dataclass
class ImportResult:
    created: int
    updated: int
    unchanged: int
    tolerance_m: float
    adjustments: list[domain.Adjustment] = field(default_factory=list)  # by feature index


def _unit_view(unit: store.Unit, geometry: str | None = None) -> UnitView:
    return UnitView(unit.code, unit.level, unit.name, unit.parent_code, list(unit.ancestors),
                    unit.area_m2, unit.updated_at, geometry)


def _member_view(session: Session, member: store.Member, caller: Principal | None) -> MemberView:
    lonlat = store.position_lonlat(session, member)
    phone = member.phone if caller is None else domain.mask_for(caller, str(member.id), member.phone)
    sent = None
    if member.position_sent_datum is not None:
        sent = (member.position_sent_lon, member.position_sent_lat, Datum(member.position_sent_datum))
    return MemberView(
        id=str(member.id), name=member.name, phone=phone, role=member.role, active=member.active,
        on_duty=member.on_duty, version=member.version,
        assignments=[(a.unit_code, a.is_primary, a.assigned_at) for a in member.assignments],
        position=Position(lonlat[0], lonlat[1], member.position_at, sent) if lonlat else None)


def _member_event(member: store.Member) -> dict:
    """Event payloads never carry a whole phone number."""
    return {"member_id": str(member.id), "name": member.name, "phone": mask_phone(member.phone),
            "role": member.role, "active": member.active, "on_duty": member.on_duty,
            "assignments": [{"grid_code": a.unit_code, "primary": a.is_primary} for a in member.assignments],
            "version": member.version}


def _touch(member: store.Member) -> None:
    member.version += 1
    member.updated_at = datetime.now().astimezone()


# --- units ------------------------------------------------------------------------------------

def leaf_grid_rows() -> list[tuple[str, UnitView, bytes]]:
    """(code, view, WKB) of every leaf grid: what the in-memory index is built from."""
    with engine().connect() as conn:
        return [(r.code, UnitView(r.code, r.level, r.name, r.parent_code, list(r.ancestors), r.area_m2,
                                  r.updated_at), bytes(r.wkb))
                for r in store.leaf_grids(conn)]


_leaf_grids: LiveIndex[UnitView] | None = None
_leaf_grids_lock = threading.Lock()


def leaf_grids(offload=None) -> LiveIndex[UnitView]:
    """This process's in-memory index of the leaf grids, rebuilt whenever one changes. Entry
    points start it with the process (`offload` runs the build, e.g. off eventlet's hub);
    anything else gets it built on first use."""
    global _leaf_grids
    with _leaf_grids_lock:
        if _leaf_grids is None:
            dsn = engine().url.set(drivername="postgresql").render_as_string(hide_password=False)
            _leaf_grids = LiveIndex(leaf_grid_rows, dsn, store.LEAF_GRIDS_CHANNEL, offload=offload,
                                    name="leaf grids").start()
        return _leaf_grids


def locate(caller: Principal, lon: float, lat: float, datum: Datum = Datum.WGS84) -> Located:
    """Any signed-in caller may pin a point: it reveals a grid code, not the grid's data.
    Answered from memory, by the rule PostGIS would apply (ST_Covers; lowest code on a border)."""
    lon, lat = domain.to_wgs84(lon, lat, datum)
    grid = leaf_grids().current.locate(lon, lat)
    if grid is None:
        raise _outside(lon, lat)
    return Located(grid, lon, lat)


def _outside(lon: float, lat: float) -> NotFound:
    return NotFound(f"point ({lon}, {lat}) lies outside every grid")


def locate_many(caller: Principal, lons: Sequence[float], lats: Sequence[float],
                datums: Sequence[Datum | None]) -> LocatedMany:
    """locate() for up to domain.MAX_LOCATE_MANY points at once, all from the same index; a bad
    point gets its own error and fails nothing else. A datum of None is an unknown one."""
    wgs_lons, wgs_lats, refused = domain.many_to_wgs84(lons, lats, datums)
    index = leaf_grids().current
    positions = index.positions(wgs_lons, wgs_lats)
    codes = index.keys_at(positions)
    lons_out, lats_out = wgs_lons.tolist(), wgs_lats.tolist()
    errors: dict[int, InvalidArgument | NotFound] = {}
    for i in np.flatnonzero(positions == NOWHERE).tolist():
        errors[i] = _outside(lons_out[i], lats_out[i])
    for i, why in refused.items():
        codes[i] = None
        errors[i] = InvalidArgument(why)
    return LocatedMany(codes, lons_out, lats_out, errors)


def get_unit(caller: Principal, code: str, include_geometry: bool = False) -> UnitView:
    units.level_of(code)
    domain.may_read_unit(caller, code)
    with session_scope() as session:
        unit = store.get_unit(session, code)
        return _unit_view(unit, store.geometry_geojson(session, code) if include_geometry else None)


def list_children(caller: Principal, code: str) -> list[UnitView]:
    units.level_of(code)
    domain.may_read_unit(caller, code)
    with session_scope() as session:
        store.get_unit(session, code)
        return [_unit_view(u) for u in store.children(session, code)]


def import_units(caller: Principal, feature_collection: dict,
                 progress: Callable[[int], None] | None = None,
                 options: domain.ImportOptions = domain.ImportOptions()) -> ImportResult:
    """Idempotent upsert of a FeatureCollection (WGS 84; services/grid/boundary_files.py reads
    the files cities have into one), all or nothing; what the tolerance let it adjust comes back
    in the result."""
    shared_access.permit(grid_access.IMPORT_UNITS, caller)
    drafts = domain.parse_feature_collection(feature_collection, options)
    if caller.role != auth.SERVICE:
        for d in drafts:
            domain.may_manage_unit(caller, d.code)
    with session_scope() as session:
        written = import_store.import_units(session, drafts, options, progress)
        if written.changed_codes:
            changed = written.changed_codes
            record_event(session, SCHEMA, "grid.units.imported", "units", {
                "created": written.created, "updated": written.updated, "unchanged": written.unchanged,
                "changed_codes": changed[:CHANGED_CODES_IN_EVENT],
                "changed_codes_truncated": len(changed) > CHANGED_CODES_IN_EVENT,
                "by": caller.member_id})
    return ImportResult(written.created, written.updated, written.unchanged, options.tolerance_m,
                        written.adjustments)


# --- members ----------------------------------------------------------------------------------

def create_member(caller: Principal, name: str, phone: str, role: str) -> MemberView:
    shared_access.require(grid_access.CREATE_MEMBER, caller)
    domain.check_member_fields(name=name, phone=phone, role=role)
    with session_scope() as session:
        member = store.Member(name=name.strip(), phone=phone, role=role, active=True, on_duty=False, version=1)
        session.add(member)
        session.flush()
        session.refresh(member)
        record_event(session, SCHEMA, "grid.member.created", f"members/{member.id}", _member_event(member))
        return _member_view(session, member, caller)


def get_member(caller: Principal, member_id: str) -> MemberView:
    mid = parse_uuid(member_id, "member id")
    with session_scope() as session:
        member = store.get_member(session, mid)
        domain.may_read_member(caller, str(mid), [a.unit_code for a in member.assignments])
        return _member_view(session, member, caller)


def update_member(caller: Principal, member_id: str, changes: dict, expected_version: int = 0) -> MemberView:
    mid = parse_uuid(member_id, "member id")
    unknown = set(changes) - {"name", "phone", "active", "on_duty"}
    if unknown:
        raise InvalidArgument(f"cannot change {', '.join(sorted(unknown))}")
    if not changes:
        raise InvalidArgument("nothing to change")
    shared_access.permit(grid_access.UPDATE_MEMBER, caller)
    domain.check_member_fields(name=changes.get("name"), phone=changes.get("phone"))
    with session_scope() as session:
        member = store.get_member(session, mid, for_update=True)
        domain.may_update_member(caller, str(mid), set(changes), [a.unit_code for a in member.assignments])
        if expected_version and member.version != expected_version:
            raise Aborted(f"member {mid} is at version {member.version}, not {expected_version}: re-read it")
        if changes.get("on_duty") and not changes.get("active", member.active):
            raise FailedPrecondition(f"member {mid} is inactive and cannot go on duty")
        if changes.get("active") is False:
            changes = {**changes, "on_duty": False}
        diff = {k: v for k, v in changes.items() if getattr(member, k) != v}
        if diff:
            for key, value in diff.items():
                setattr(member, key, value.strip() if key == "name" else value)
            _touch(member)
            session.flush()
            data = _member_event(member) | {"changed": sorted(diff)}
            record_event(session, SCHEMA, "grid.member.updated", f"members/{mid}", data)
            if diff.get("active") is False:
                signin.revoke_sessions(session, mid, "deactivated")
        return _member_view(session, member, caller)


def _may_manage_assignment(caller: Principal, member_id: str, grid_code: str) -> uuid.UUID:
    """The member's id, once the caller may manage members and the unit is in their scope."""
    mid = parse_uuid(member_id, "member id")
    units.level_of(grid_code)
    shared_access.require(grid_access.ASSIGN_MEMBER, caller, units_=[grid_code], what=f"unit {grid_code}")
    return mid


def assign_member(caller: Principal, member_id: str, grid_code: str, primary: bool) -> MemberView:
    mid = _may_manage_assignment(caller, member_id, grid_code)
    with session_scope() as session:
        member = store.get_member(session, mid, for_update=True)
        domain.may_assign(caller, str(mid), grid_code, [a.unit_code for a in member.assignments])
        if not member.active:
            raise FailedPrecondition(f"member {mid} is inactive")
        domain.check_assignable(member.role, grid_code)
        store.get_unit(session, grid_code)
        current = {a.unit_code: a for a in member.assignments}
        primary = primary or not current  # the first assignment is the primary one
        existing = current.get(grid_code)
        if existing is not None and (existing.is_primary or not primary):
            return _member_view(session, member, caller)  # already so: nothing changes, no event
        if primary:
            for a in member.assignments:
                a.is_primary = False
            session.flush()
        if existing is None:
            member.assignments.append(store.Assignment(unit_code=grid_code, is_primary=primary))
        else:
            existing.is_primary = True
        _touch(member)
        session.flush()
        record_event(session, SCHEMA, "grid.member.assigned", f"members/{mid}",
                     _member_event(member) | {"grid_code": grid_code, "primary": primary})
        return _member_view(session, member, caller)


def release_member(caller: Principal, member_id: str, grid_code: str) -> MemberView:
    mid = _may_manage_assignment(caller, member_id, grid_code)
    with session_scope() as session:
        member = store.get_member(session, mid, for_update=True)
        released = next((a for a in member.assignments if a.unit_code == grid_code), None)
        if released is None:
            raise NotFound(f"member {mid} is not assigned to {grid_code}")
        member.assignments.remove(released)
        session.flush()
        if released.is_primary and member.assignments:
            member.assignments[0].is_primary = True  # the longest-held one takes over
        _touch(member)
        session.flush()
        record_event(session, SCHEMA, "grid.member.released", f"members/{mid}",
                     _member_event(member) | {"grid_code": grid_code})
        if not member.assignments:
            signin.revoke_sessions(session, mid, "released from their last unit")
        return _member_view(session, member, caller)


def list_members(caller: Principal, root_code: str, role: str | None = None, on_duty_only: bool = False,
                 page_size: int = 100, page_token: str = "") -> tuple[list[MemberView], str]:
    units.level_of(root_code)
    domain.may_read_unit(caller, root_code, grid_access.LIST_MEMBERS)
    if role:
        domain.check_member_fields(role=role)
    if not 0 <= page_size <= MAX_PAGE:
        raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE}")
    page_size = page_size or 100
    after = None
    if page_token:
        try:
            after = uuid.UUID(page_token)
        except ValueError:
            raise InvalidArgument("page_token is not one this service gave out")
    with session_scope() as session:
        store.get_unit(session, root_code)
        members = store.list_members(session, root_code, role, on_duty_only, page_size + 1, after)
        more = len(members) > page_size
        members = members[:page_size]
        views = [_member_view(session, m, caller) for m in members]
        return views, (str(members[-1].id) if more else "")


def report_position(caller: Principal, member_id: str, lon: float, lat: float,
                    datum: Datum = Datum.WGS84) -> tuple[Position, str | None]:
    """Stores where a member is, in WGS 84, with the point as sent; returns it and its grid."""
    mid = parse_uuid(member_id, "member id")
    domain.may_report_position(caller, str(mid))
    sent_lon, sent_lat = domain.check_point(lon, lat)
    lon, lat = domain.to_wgs84(sent_lon, sent_lat, datum)
    grid = leaf_grids().current.locate(lon, lat)
    grid_code = grid.code if grid else None
    with session_scope() as session:
        member = store.get_member(session, mid, for_update=True)
        if not member.active:
            raise FailedPrecondition(f"member {mid} is inactive")
        member.position = f"SRID=4326;POINT({lon!r} {lat!r})"
        member.position_at = datetime.now().astimezone()
        member.position_sent_lon, member.position_sent_lat, member.position_sent_datum = sent_lon, sent_lat, datum.value
        session.flush()
        record_event(session, SCHEMA, "grid.member.position_reported", f"members/{mid}",
                     {"member_id": str(mid), "lon": lon, "lat": lat, "grid_code": grid_code,
                      "reported_at": member.position_at.isoformat(),
                      "as_sent": {"lon": sent_lon, "lat": sent_lat, "datum": datum.value}})
        return Position(lon, lat, member.position_at, (sent_lon, sent_lat, datum)), grid_code


def health() -> dict:
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    return {"status": "SERVING"}
