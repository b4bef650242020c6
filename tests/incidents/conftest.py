from __future__ import annotations

import uuid
from datetime import datetime, timezone

from demo.city import grid_cells
from gridbus.incidents.v1 import incidents_pb2 as pb
from tests.conftest import CITY

CELLS = {code: (w, s, e, n) for code, w, s, e, n in grid_cells(CITY)}
GRIDS = sorted(CELLS)
DISTRICTS = sorted({g[:6] for g in GRIDS})


def inside(grid_code: str, fx: float = 0.5, fy: float = 0.5) -> tuple[float, float]:
    """A point at (fx, fy) of the grid's box."""
    w, s, e, n = CELLS[grid_code]
    return w + (e - w) * fx, s + (n - s) * fy


def report_request(grid_code: str | None = None, *, at: tuple[float, float] | None = None,
                   category: str = "0102", title: str = "Garbage by the gate", **overrides) -> pb.ReportRequest:
    lon, lat = at or inside(grid_code or GRIDS[0])
    occurred = overrides.pop("occurred_at", datetime.now(timezone.utc))
    req = pb.ReportRequest(report_id=overrides.pop("report_id", str(uuid.uuid4())), category_code=category,
                           title=title, description=overrides.pop("description", "Three bags, torn"),
                           location=pb.Location(lon=lon, lat=lat, accuracy_m=overrides.pop("accuracy_m", 8.0)),
                           **overrides)
    req.occurred_at.FromDatetime(occurred)
    return req
