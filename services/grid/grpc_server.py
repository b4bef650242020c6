"""The grid service's gRPC server: maps protos to operations and errors to status codes.

Run: python -m services.grid.grpc_server (port from GRIDBUS_GRID_GRPC_PORT)."""
from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from gridbus.grid.v1 import grid_pb2 as pb
from gridbus.grid.v1 import grid_pb2_grpc as pb_grpc
from services.grid import operations as ops
from services.grid import tiles
from shared.config import settings
from shared.errors import InvalidArgument
from shared.grpc_support import serve, unary
from shared.logs import setup_logging

SERVICE_NAME = "gridbus.grid.v1.GridService"

_LEVEL = {"city": pb.LEVEL_CITY, "district": pb.LEVEL_DISTRICT, "street": pb.LEVEL_STREET,
          "community": pb.LEVEL_COMMUNITY, "grid": pb.LEVEL_GRID}
_ROLE = {"officer": pb.ROLE_OFFICER, "dispatcher": pb.ROLE_DISPATCHER, "admin": pb.ROLE_ADMIN}
_ROLE_NAME = {v: k for k, v in _ROLE.items()}


def _ts(when) -> Timestamp:
    ts = Timestamp()
    if when is not None:
        ts.FromDatetime(when)
    return ts


def unit_pb(u: ops.UnitView) -> pb.Unit:
    return pb.Unit(code=u.code, level=_LEVEL[u.level], name=u.name, parent_code=u.parent_code or "",
                   ancestor_codes=u.ancestors, geometry_geojson=u.geometry_geojson or "",
                   area_m2=u.area_m2, updated_at=_ts(u.updated_at))


def member_pb(m: ops.MemberView) -> pb.Member:
    out = pb.Member(id=m.id, name=m.name, phone=m.phone, role=_ROLE[m.role], active=m.active,
                    on_duty=m.on_duty, version=m.version,
                    assignments=[pb.Assignment(grid_code=c, primary=p, assigned_at=_ts(t))
                                 for c, p, t in m.assignments])
    if m.position:
        out.last_position.CopyFrom(pb.Position(lon=m.position.lon, lat=m.position.lat,
                                               reported_at=_ts(m.position.reported_at)))
    return out


def _role(value: int, *, required: bool) -> str | None:
    if value == pb.ROLE_UNSPECIFIED and not required:
        return None
    if value not in _ROLE_NAME:
        raise InvalidArgument("role must be OFFICER, DISPATCHER or ADMIN")
    return _ROLE_NAME[value]


class GridServicer(pb_grpc.GridServiceServicer):
    @unary
    def Locate(self, request, context, caller):
        return pb.LocateResponse(grid=unit_pb(ops.locate(caller, request.lon, request.lat)))

    @unary
    def GetUnit(self, request, context, caller):
        return unit_pb(ops.get_unit(caller, request.code, request.include_geometry))

    @unary
    def ListChildren(self, request, context, caller):
        return pb.ListChildrenResponse(units=[unit_pb(u) for u in ops.list_children(caller, request.code)])

    @unary
    def ImportUnits(self, request, context, caller):
        try:
            doc = json.loads(request.feature_collection_geojson)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"feature_collection_geojson is not JSON: {exc}")
        r = ops.import_units(caller, doc)
        return pb.ImportUnitsResponse(created=r.created, updated=r.updated, unchanged=r.unchanged)

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
        position, grid_code = ops.report_position(caller, request.member_id, request.lon, request.lat)
        return pb.ReportPositionResponse(
            position=pb.Position(lon=position.lon, lat=position.lat, reported_at=_ts(position.reported_at)),
            grid_code=grid_code or "")

    @unary
    def GetTile(self, request, context, caller):
        tile = tiles.get_tile(caller, request.z, request.x, request.y)
        return pb.Tile(mvt=tile.mvt, levels=[_LEVEL[level] for level in tile.levels])


def main() -> None:
    setup_logging()
    serve(SERVICE_NAME, pb_grpc.add_GridServiceServicer_to_server, GridServicer(), settings().grid_grpc_port)


if __name__ == "__main__":
    main()
