"""Pinning a report's point to its leaf grid, from this process's in-memory index of grid's leaf grids.

The index (shared/spatial.py) answers by grid's rule, the one `grid.locate` (grid migration 0003)
writes in SQL: ST_Covers, and the lowest code on a shared border or corner. It is built when the
process starts and rebuilt, aside and swapped in whole, when a committed transaction changes a
leaf grid (grid migration 0004's NOTIFY), so pinning costs no database round trip.

A point the index finds in no grid is checked against the database before a report is refused
for it: a grid imported a moment ago may not be in the index yet (its NOTIFY not acted on), and
then the index is rebuilt first. So a report never fails for a grid that is stored."""
from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session

from services.incidents import store
from shared.db import engine
from shared.spatial import LiveIndex

Lineage = tuple[str, ...]  # city, district, street, community, grid

_live: LiveIndex[Lineage] | None = None
_lock = threading.Lock()


def _rows() -> list[tuple[str, Lineage, bytes]]:
    with engine().connect() as conn:
        return [(r.code, (*r.ancestors, r.code), bytes(r.wkb)) for r in store.leaf_grids(conn)]


def leaf_grids() -> LiveIndex[Lineage]:
    """This process's index; the servers build it before they take requests, anything else
    (a test, a command) on first use."""
    global _live
    with _lock:
        if _live is None:
            dsn = engine().url.set(drivername="postgresql").render_as_string(hide_password=False)
            _live = LiveIndex(_rows, dsn, store.LEAF_GRIDS_CHANNEL, name="leaf grids (incidents)").start()
        return _live


def pin(session: Session, lon: float, lat: float) -> tuple[str, list[str]] | None:
    """(grid code, lineage) of the leaf grid covering a WGS 84 point, or None outside every grid."""
    live = leaf_grids()
    lineage = live.current.locate(lon, lat)
    if lineage is None and store.covered_by_a_grid(session, lon, lat):
        # An index read after this check holds the grid the check saw.
        lineage = live.loaded_since(time.monotonic()).locate(lon, lat)
    return (lineage[-1], list(lineage)) if lineage else None
