"""The grid service's nameko entry points: RPC for other services. Thin: they call operations.

Run: python -m services.nameko_run services.grid.service
Callers pass `authorization: Bearer <token>` in nameko's context data."""
from __future__ import annotations

from dataclasses import asdict

import eventlet.tpool
from nameko.extensions import DependencyProvider

from services.grid import access, operations as ops
from shared import datum
from shared.access import rpc
from shared.nameko_support import Caller, OutboxRelay


def _unit(u: ops.UnitView) -> dict:
    d = asdict(u)
    d["updated_at"] = u.updated_at.isoformat()
    return d


class LeafGrids(DependencyProvider):
    """Builds the process's index of the leaf grids as the container starts. Builds run in
    eventlet's pool of real threads, so RPC keeps answering from the old index meanwhile."""

    def start(self):
        ops.leaf_grids(offload=eventlet.tpool.execute)

    def stop(self):
        ops.leaf_grids().stop()

    kill = stop


class GridService:
    name = "grid"
    access = access.TABLE

    caller = Caller()
    relay = OutboxRelay("grid")
    leaf_grids = LeafGrids()

    @rpc
    def health(self) -> dict:
        return ops.health()

    @rpc
    def locate(self, lon: float, lat: float, datum_name: str | None = None) -> dict:
        """The leaf grid for a point in datum_name (wgs84, cgcs2000, gcj02, bd09; default wgs84):
        {code, name, ancestors, ..., wgs84: {lon, lat}}; NotFound outside every grid."""
        found = ops.locate(self.caller(), lon, lat, datum.parse(datum_name))
        return _unit(found.grid) | {"wgs84": {"lon": found.lon, "lat": found.lat}}

    @rpc
    def get_unit(self, code: str) -> dict:
        return _unit(ops.get_unit(self.caller(), code))

    @rpc
    def list_children(self, code: str) -> list[dict]:
        return [_unit(u) for u in ops.list_children(self.caller(), code)]

    @rpc
    def get_member(self, member_id: str) -> dict:
        m = ops.get_member(self.caller(), member_id)
        d = asdict(m)
        d["assignments"] = [{"grid_code": c, "primary": p, "assigned_at": t.isoformat()} for c, p, t in m.assignments]
        if m.position:
            d["position"] = {"lon": m.position.lon, "lat": m.position.lat,
                             "reported_at": m.position.reported_at.isoformat()}
        return d

    @rpc
    def list_members(self, grid_code: str, role: str | None = None, on_duty_only: bool = False) -> list[str]:
        """Ids of the members assigned in a subtree (first 500)."""
        members, _ = ops.list_members(self.caller(), grid_code, role, on_duty_only, ops.MAX_PAGE)
        return [m.id for m in members]
