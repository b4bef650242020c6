"""The queries behind map tiles: PostGIS cuts, simplifies and encodes them (ST_AsMVT)."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

_TYPICAL_WIDTHS = text(
    "SELECT level, percentile_cont(0.5) WITHIN GROUP (ORDER BY sqrt(area_m2)) AS width "
    "FROM grid.units GROUP BY level")

# The outlines are simplified in degrees (cheap) before they are projected and cut to the tile.
_TILE = text("""
    WITH box AS (
        SELECT ST_TileEnvelope(:z, :x, :y) AS merc, ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326) AS geo
    ), shown AS (
        SELECT u.code, u.name, u.level, u.geom FROM grid.units u, box
        WHERE u.level = ANY(:levels) AND u.geom && box.geo
          AND (:everything OR u.code = ANY(:scope) OR u.ancestors && CAST(:scope AS text[]))
    ), outlines AS (
        SELECT code, name, level,
               ST_AsMVTGeom(ST_Transform(ST_SimplifyPreserveTopology(geom, :tolerance), 3857),
                            box.merc, :extent, 64, true) AS geom
        FROM shown, box
    ), labels AS (
        SELECT code, name, level,
               ST_AsMVTGeom(ST_Transform(ST_PointOnSurface(geom), 3857), box.merc, :extent, 0, true) AS geom
        FROM shown, box
    )
    SELECT coalesce((SELECT ST_AsMVT(outlines, 'units', :extent, 'geom') FROM outlines WHERE geom IS NOT NULL), ''::bytea)
        || coalesce((SELECT ST_AsMVT(labels, 'labels', :extent, 'geom') FROM labels WHERE geom IS NOT NULL), ''::bytea)
""")


def typical_widths(conn: Connection) -> dict[str, float]:
    """The median width (square root of the area) of each level's units, in metres."""
    return {row.level: float(row.width) for row in conn.execute(_TYPICAL_WIDTHS)}


def tile(conn: Connection, z: int, x: int, y: int, *, levels: list[str], scope: list[str] | None,
         tolerance: float, extent: int) -> bytes:
    """The MVT of the units of `levels` in the tile; `scope` None: every unit."""
    row = conn.execute(_TILE, {"z": z, "x": x, "y": y, "levels": levels, "everything": scope is None,
                               "scope": list(scope or []), "tolerance": tolerance, "extent": extent}).one()
    return bytes(row[0])
