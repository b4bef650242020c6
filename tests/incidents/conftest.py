from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone

import grpc

from demo.city import grid_cells
from gridbus.incidents.v1 import incidents_pb2 as pb
from tests.conftest import CITY
from tests.support import metadata

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


def watching(stub, grid_code: str, watcher_token: str) -> tuple[grpc.Call, list]:
    """Opens a Watch of a subtree and collects its changes in a thread, from the moment the server's
    feed is bound (it sends its initial metadata then): every change after this returns is seen."""
    stream = stub.Watch(pb.WatchRequest(grid_code=grid_code), metadata=metadata(watcher_token), timeout=30)
    changes: list = []

    def read():
        try:
            for change in stream:
                changes.append(change)
        except grpc.RpcError:
            pass

    threading.Thread(target=read, daemon=True).start()
    stream.initial_metadata()
    return stream, changes
