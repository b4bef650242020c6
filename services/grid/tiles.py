"""Map tiles of the grid hierarchy for consoles (GetTile): the caller's units only, the levels
worth drawing at the tile's zoom, simplified to its resolution; PostGIS does the cutting and
encoding. Rules in tiling.py, queries in tile_store.py."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from services.grid import access as grid_access, tile_store, tiling
from services.grid.domain import CITY, LEVELS, level_of
from shared import access as shared_access, auth
from shared.auth import Principal
from shared.db import engine

# Units change by import only; their typical sizes are re-read at most this often.
WIDTHS_MAX_AGE_S = 60.0
_widths_lock = threading.Lock()
_widths: tuple[float, dict[str, float]] | None = None


@dataclass(frozen=True)
class Tile:
    mvt: bytes
    levels: list[str]


def _typical_widths(conn) -> dict[str, float]:
    global _widths
    with _widths_lock:
        if _widths is None or time.monotonic() - _widths[0] > WIDTHS_MAX_AGE_S:
            _widths = (time.monotonic(), tile_store.typical_widths(conn))
        return _widths[1]


def _coarsest_level(caller: Principal) -> str:
    if caller.role == auth.SERVICE or not caller.scope:
        return CITY
    return min((level_of(code) for code in caller.scope), key=LEVELS.index)


def get_tile(caller: Principal, z: int, x: int, y: int) -> Tile:
    """The caller's unit outlines in tile z/x/y (an empty tile outside their scope)."""
    shared_access.permit(grid_access.TILES, caller)
    tiling.check_tile(z, x, y)
    with engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        levels = tiling.levels_at(z, tiling.tile_latitude(z, y), _typical_widths(conn), _coarsest_level(caller))
        scope = None if caller.role == auth.SERVICE else list(caller.scope)
        mvt = tile_store.tile(conn, z, x, y, levels=levels, scope=scope,
                              tolerance=tiling.simplify_tolerance(z), extent=tiling.EXTENT)
    return Tile(mvt, levels)
