"""Map tile rules: which tiles exist, how much a tile's outlines may be simplified, and which
levels of the hierarchy are worth drawing at a zoom. Plain Python, no I/O.

A console's map asks for tiles of the web-map pyramid (Web Mercator, 512-pixel vector tiles).
A level is drawn once its typical unit is at least MIN_PIXELS wide on screen: a city of 20,000
grids shows its districts when the whole city is in view and its grids only when a few hundred
of them fill the screen, whatever the size of its units."""
from __future__ import annotations

import math

from services.grid.domain import LEVELS
from shared.errors import InvalidArgument

MAX_ZOOM = 22
TILE_PIXELS = 512          # a vector tile covers 512 screen pixels
EXTENT = 4096              # MVT coordinate extent
EQUATOR_M = 40_075_016.686
MIN_PIXELS = 40            # a level narrower than this on screen is left out
DEGREES_PER_TILE_AT_Z0 = 360.0


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidArgument(f"zoom {z} is outside 0..{MAX_ZOOM}")
    last = 2 ** z - 1
    if not (0 <= x <= last and 0 <= y <= last):
        raise InvalidArgument(f"tile {z}/{x}/{y} does not exist: x and y run 0..{last} at zoom {z}")


def tile_latitude(z: int, y: int) -> float:
    """The latitude of the tile's middle row."""
    n = math.pi * (1 - 2 * (y + 0.5) / 2 ** z)
    return math.degrees(math.atan(math.sinh(n)))


def metres_per_pixel(z: int, lat: float) -> float:
    return EQUATOR_M * math.cos(math.radians(lat)) / (TILE_PIXELS * 2 ** z)


def simplify_tolerance(z: int) -> float:
    """Degrees of longitude one MVT unit spans at this zoom: detail finer than this is lost
    in the tile anyway, so outlines are simplified to it before they are cut."""
    return DEGREES_PER_TILE_AT_Z0 / 2 ** z / EXTENT


def levels_at(z: int, lat: float, typical_width_m: dict[str, float], always: str) -> list[str]:
    """The levels to draw: those whose typical unit spans MIN_PIXELS or more, and `always`
    (the coarsest level the caller sees), coarsest first."""
    mpp = metres_per_pixel(z, lat)
    shown = {level for level, width in typical_width_m.items() if width / mpp >= MIN_PIXELS}
    shown.add(always)
    return [level for level in LEVELS if level in shown]
