"""The grid service's gRPC server: maps protos to operations and errors to status codes.

Run: python -m services.grid.grpc_server (port from GRIDBUS_GRID_GRPC_PORT; GRIDBUS_GRID_GRPC_PROCESSES
processes serve it together)."""
from __future__ import annotations

import functools
import sys

from gridbus.common.v1 import geo_pb2
from gridbus.grid.v1 import grid_pb2 as pb
from gridbus.grid.v1 import grid_pb2_grpc as pb_grpc
from services import registry
from services.grid import access, boundary_files, domain, operations as ops, signin, tiles
from shared import geo_proto
from shared.errors import InvalidArgument
from shared.geo_proto import SHIFTED as _SHIFTED, datum as _datum
from shared.grpc_support import STATUS, serve, serve_processes, timestamp, unary
from shared.config import settings
from shared.logs import setup_logging

SERVICE_NAME = "gridbus.grid.v1.GridService"

_LEVEL = {"city": pb.LEVEL_CITY, "district": pb.LEVEL_DISTRICT, "street": pb.LEVEL_STREET,
          "community": pb.LEVEL_COMMUNITY, "grid": pb.LEVEL_GRID}
_ROLE = {"officer": pb.ROLE_OFFICER, "dispatcher": pb.ROLE_DISPATCHER, "admin": pb.ROLE_ADMIN}
_ROLE_NAME = {v: k for k, v in _ROLE.items()}
_ADJUSTMENT = {domain.CLIPPED: pb.ImportAdjustment.KIND_CLIPPED, domain.OVERLAP: pb.ImportAdjustment.KIND_OVERLAP,
               domain.REPAIRED: pb.ImportAdjustment.KIND_REPAIRED, domain.SLIVER: pb.ImportAdjustment.KIND_SLIVER,
               domain.GAP: pb.ImportAdjustment.KIND_GAP}


def unit_pb(u: ops.UnitView) -> pb.Unit:
    return pb.Unit(code=u.code, level=_LEVEL[u.level], name=u.name, parent_code=u.parent_code or "",
                   ancestor_codes=u.ancestors, geometry_geojson=u.geometry_geojson or "",
                   area_m2=u.area_m2, updated_at=timestamp(u.updated_at))


def member_pb(m: ops.MemberView) -> pb.Member:
    out = pb.Member(id=m.id, name=m.name, phone=m.phone, role=_ROLE[m.role], active=m.active,
                    on_duty=m.on_duty, version=m.version,
                    assignments=[pb.Assignment(grid_code=c, primary=p, assigned_at=timestamp(t))
                                 for c, p, t in m.assignments])
    if m.position:
        out.last_position.CopyFrom(position_pb(m.position))
    return out


def position_pb(p: ops.Position) -> pb.Position:
    out = pb.Position(lon=p.lon, lat=p.lat, reported_at=timestamp(p.reported_at))
    if p.sent:
        lon, lat, datum = p.sent
        out.as_sent.CopyFrom(geo_proto.geo_point(lon, lat, datum))
    return out


def _role(value: int, *, required: bool) -> str | None:
    if value == pb.ROLE_UNSPECIFIED and not required:
        return None
    if value not in _ROLE_NAME:
        raise InvalidArgument("role must be OFFICER, DISPATCHER or ADMIN")
    return _ROLE_NAME[value]


class GridServicer(pb_grpc.GridServiceServicer):
    access = access.TABLE

    @unary
    def Locate(self, request, context, caller):
        found = ops.locate(caller, request.lon, request.lat, _datum(request.datum))
        return pb.LocateResponse(grid=unit_pb(found.grid), wgs84=geo_pb2.LonLat(lon=found.lon, lat=found.lat))

    @unary
    def LocateMany(self, request, context, caller):
        sent = [(p.lon, p.lat, geo_proto.FROM_PB.get(p.datum)) for p in request.points]
        lons, lats, datums = zip(*sent) if sent else ((), (), ())
        found = ops.locate_many(caller, lons, lats, datums)
        response = pb.LocateManyResponse()
        results, add = response.results, response.results.add
        for code in found.grid_codes:  # a thousand points: the common case first, in one pass
            add(grid_code=code)
        for i, error in found.errors.items():
            results[i].code, results[i].message = STATUS[error.code].value[0], error.message
        if _SHIFTED.intersection(datums):
            for i, d in enumerate(datums):
                if d in _SHIFTED and not isinstance(found.errors.get(i), InvalidArgument):
                    wgs84 = results[i].wgs84
                    wgs84.lon, wgs84.lat = found.lons[i], found.lats[i]
        return response

    @unary
    def GetUnit(self, request, context, caller):
        return unit_pb(ops.get_unit(caller, request.code, request.include_geometry))

    @unary
    def ListChildren(self, request, context, caller):
        return pb.ListChildrenResponse(units=[unit_pb(u) for u in ops.list_children(caller, request.code)])

    @unary
    def ImportUnits(self, request, context, caller):
        options = domain.ImportOptions(
            tolerance_m=request.tolerance_m if request.HasField("tolerance_m") else domain.DEFAULT_TOLERANCE_M,
            repair=request.repair, code_field=request.code_field or "code", name_field=request.name_field or "name")
        source = boundary_files.read_geojson(request.feature_collection_geojson)
        r = ops.import_units(caller, source.feature_collection, None, options)
        return pb.ImportUnitsResponse(
            created=r.created, updated=r.updated, unchanged=r.unchanged, tolerance_m=r.tolerance_m,
            adjustments=[pb.ImportAdjustment(feature_index=a.index, code=a.code, kind=_ADJUSTMENT[a.kind],
                                             area_m2=a.area_m2, other_code=a.other_code, detail=a.detail)
                         for a in r.adjustments])

    @unary
    def CreateMember(self, request, context, caller):
        return member_pb(ops.create_member(caller, request.name, request.phone,
                                           _role(request.role, required=True)))

    @unary
    def GetMember(self, request, context, caller):
        return member_pb(ops.get_member(caller, request.id))

    @unary
    def UpdateMember(self, request, context, caller):
        changes = {f: getattr(request, f) for f in ("name", "phone", "active", "on_duty") if request.HasField(f)}
        return member_pb(ops.update_member(caller, request.id, changes, request.expected_version))

    @unary
    def AssignMember(self, request, context, caller):
        return member_pb(ops.assign_member(caller, request.member_id, request.grid_code, request.primary))

    @unary
    def ReleaseMember(self, request, context, caller):
        return member_pb(ops.release_member(caller, request.member_id, request.grid_code))

    @unary
    def ListMembers(self, request, context, caller):
        members, token = ops.list_members(caller, request.grid_code, _role(request.role, required=False),
                                          request.on_duty_only, request.page_size, request.page_token)
        return pb.ListMembersResponse(members=[member_pb(m) for m in members], next_page_token=token)

    @unary
    def ReportPosition(self, request, context, caller):
        position, grid_code = ops.report_position(caller, request.member_id, request.lon, request.lat,
                                                  _datum(request.datum))
        return pb.ReportPositionResponse(position=position_pb(position), grid_code=grid_code or "")

    @unary
    def GetTile(self, request, context, caller):
        tile = tiles.get_tile(caller, request.z, request.x, request.y)
        return pb.Tile(mvt=tile.mvt, levels=[_LEVEL[level] for level in tile.levels])

    @unary(anonymous=True)
    def SignIn(self, request, context, _):
        return tokens_pb(signin.sign_in(request.login, request.password))

    @unary(anonymous=True)
    def Refresh(self, request, context, _):
        return tokens_pb(signin.refresh(request.refresh_token))

    @unary(anonymous=True)
    def SignOut(self, request, context, _):
        signin.sign_out(request.refresh_token)
        return pb.SignOutResponse()


def tokens_pb(t: signin.Tokens) -> pb.SignInResponse:
    return pb.SignInResponse(access_token=t.access_token, access_expires_at=timestamp(t.access_expires_at),
                             refresh_token=t.refresh_token, refresh_expires_at=timestamp(t.refresh_expires_at),
                             member_id=t.member_id, role=_ROLE[t.role], scope=list(t.scope))


def _serve(share_port: bool = False) -> None:
    setup_logging()
    if share_port:  # a spawned child: its own revocation list
        from shared import revocation_feed
        s = settings()
        revocation_feed.start(s.amqp_uri, s.revocation_poll_seconds)
    ops.leaf_grids()  # built before the first call is taken
    serve(SERVICE_NAME, pb_grpc.add_GridServiceServicer_to_server, GridServicer(), registry.port("grid"),
          share_port=share_port)


def main() -> None:
    processes = registry.start("grid-grpc").grid_grpc_processes
    if processes == 1:
        _serve()
        return
    setup_logging()
    sys.exit(serve_processes(processes, functools.partial(_serve, share_port=True), "grid-grpc"))


if __name__ == "__main__":
    main()
