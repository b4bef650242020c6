"""The grid service's nameko entry points: RPC for other services. Thin: they call operations.

Run: nameko run services.grid.service --broker $GRIDBUS_AMQP_URI
Callers pass `authorization: Bearer <token>` in nameko's context data."""
from __future__ import annotations

from dataclasses import asdict

from nameko.rpc import rpc

from services.grid import operations as ops
from shared.errors import DomainError
from shared.nameko_support import Caller, OutboxRelay


def _unit(u: ops.UnitView) -> dict:
    d = asdict(u)
    d["updated_at"] = u.updated_at.isoformat()
    return d


class GridService:
    name = "grid"

    caller = Caller()
    relay = OutboxRelay("grid")

    @rpc(expected_exceptions=DomainError)
    def health(self) -> dict:
        return ops.health()

    @rpc(expected_exceptions=DomainError)
    def locate(self, lon: float, lat: float) -> dict:
        """The leaf grid for a point: {code, name, ancestors, ...}; NotFound outside every grid."""
        return _unit(ops.locate(self.caller(), lon, lat))

    @rpc(expected_exceptions=DomainError)
    def get_unit(self, code: str) -> dict:
        return _unit(ops.get_unit(self.caller(), code))

    @rpc(expected_exceptions=DomainError)
    def list_children(self, code: str) -> list[dict]:
        return [_unit(u) for u in ops.list_children(self.caller(), code)]

    @rpc(expected_exceptions=DomainError)
    def get_member(self, member_id: str) -> dict:
        m = ops.get_member(self.caller(), member_id)
        d = asdict(m)
        d["assignments"] = [{"grid_code": c, "primary": p, "assigned_at": t.isoformat()} for c, p, t in m.assignments]
        if m.position:
            d["position"] = {"lon": m.position.lon, "lat": m.position.lat,
                             "reported_at": m.position.reported_at.isoformat()}
        return d

    @rpc(expected_exceptions=DomainError)
    def list_members(self, grid_code: str, role: str | None = None, on_duty_only: bool = False) -> list[str]:
        """Ids of the members assigned in a subtree (first 500)."""
        members, _ = ops.list_members(self.caller(), grid_code, role, on_duty_only, ops.MAX_PAGE)
        return [m.id for m in members]
