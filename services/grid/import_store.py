"""The PostGIS side of importing units: stage the drafts, refuse or repair invalid rings, clip
children to their parents and make siblings disjoint within the tolerance, refuse anything
beyond it, report what was adjusted, then upsert.

Set-based: a fixed number of statements per level, whatever the number of features. It runs
in the caller's transaction, so a refusal writes nothing.

The tolerance, in metres (measured in a local metric frame, see _metres):
  - a child may stick out of its parent only within `tolerance` of the parent's boundary (the
    part outside lies inside the parent's boundary buffered by the tolerance); it is then
    clipped to the parent (ST_Intersection), and the area removed is reported;
  - two siblings may overlap only where each is within `tolerance` of the other's boundary
    (neither reaches deeper than the tolerance into the other); the overlap then stays with the
    lower code and is removed from the higher one (a stored sibling that is not in the import
    keeps it); the area is reported;
  - parts of a unit, and gaps between a parent's children, narrower than the tolerance are
    reported, not changed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.grid.domain import (CLIPPED, GAP, OVERLAP, REPAIRED, SLIVER, Adjustment, ImportOptions,
                                  UnitDraft)
from shared.errors import InvalidArgument
from shared.units import ancestors, depth

CHUNK = 1000
MESSAGE_GEOJSON_CHARS = 3000  # keeps an error, GeoJSON included, inside gRPC's 8 KiB trailers


@dataclass
class Written:
    created: int
    updated: int
    unchanged: int
    changed_codes: list[str]
    adjustments: list[Adjustment]


def _polygonal(expr: str) -> str:
    return f"ST_Multi(ST_CollectionExtract({expr}, 3))"


def _mid_lat(geom: str) -> str:
    return f"((ST_YMin({geom}) + ST_YMax({geom})) / 2)"


def _metres(geom: str, lat: str) -> str:
    """geom with degrees scaled to metres at latitude lat (WGS 84 ellipsoid): an affine map, so
    its edges stay the straight lon/lat lines gridbus stores. Geography would read them as
    geodesics, which bow about a metre away from a 10 km edge: more than the noise it judges."""
    per_degree_lon = f"(111412.84 * cos(radians({lat})) - 93.5 * cos(3 * radians({lat})))"
    per_degree_lat = f"(111132.954 - 559.822 * cos(2 * radians({lat})) + 1.175 * cos(4 * radians({lat})))"
    return f"ST_Scale({geom}, {per_degree_lon}, {per_degree_lat})"


def _area_m2(part: str) -> str:
    return f"ST_Area({_metres(part, _mid_lat(part))})"


def _beyond(part: str, boundary_of: str) -> str:
    """True when some of `part` lies farther than the tolerance from `boundary_of`'s boundary:
    the part is not inside that boundary buffered by the tolerance. The boundary is first cut
    down to the box within reach of the part (a point of the part within the tolerance of the
    boundary has its nearest boundary point there), so a county's whole border is never
    buffered to judge one sliver."""
    lat = _mid_lat(part)
    margin = f"(:tol * 1.5 / greatest(111412.84 * cos(radians({lat})), 1000))"
    near_boundary = f"ST_ClipByBox2D(ST_Boundary({boundary_of}), ST_Expand({part}, {margin})::box2d)"
    band = f"ST_Buffer({_metres(near_boundary, lat)}, :tol)"
    return f"NOT ST_IsEmpty(ST_Difference({_metres(part, lat)}, {band}))"


def import_units(session: Session, drafts: list[UnitDraft], options: ImportOptions,
                 progress: Callable[[int], None] | None = None) -> Written:
    """Checks, adjusts and upserts the drafts (parents first). Raises InvalidArgument naming the
    first feature beyond the tolerance; the caller's transaction then writes nothing."""
    params = {"tol": float(options.tolerance_m)}
    # The planner's costs for these temp tables are rough; compiling a plan would cost more than it saves.
    session.execute(text("SET LOCAL jit = off"))
    _stage(session, drafts, progress)
    _check_rings(session, options.repair)
    _check_parents_exist(session)
    _add_stored_family(session)
    session.execute(text(
        "CREATE TEMP TABLE import_adjustments (idx int, code text, kind text, area_m2 float8, "
        "other_code text DEFAULT '', detail text DEFAULT '') ON COMMIT DROP"))
    session.execute(text(
        "CREATE TEMP TABLE import_parts (idx int, code text, other_code text, part geometry) ON COMMIT DROP"))
    if options.repair:
        session.execute(text("INSERT INTO import_adjustments (idx, code, kind, area_m2, detail) "
                             "SELECT idx, code, :kind, area_m2, reason FROM import_repaired"),
                        {"kind": REPAIRED})
    for level_depth in sorted({depth(d.code) for d in drafts}):
        p = {**params, "depth": level_depth}
        if level_depth > 1:
            _clip_to_parents(session, p)
        _resolve_sibling_overlaps(session, p)
        _check_stored_children(session, p)
    _report_slivers_and_gaps(session, params)
    return _write(session, len(drafts))


def _stage(session: Session, drafts: list[UnitDraft], progress) -> None:
    session.execute(text(
        "CREATE TEMP TABLE import_work (idx int, code text PRIMARY KEY, depth int, level text, name text, "
        "parent_code text, ancestors text[], gj text, geom geometry(MultiPolygon, 4326)) ON COMMIT DROP"))
    for start in range(0, len(drafts), CHUNK):
        rows = [{"idx": d.index, "code": d.code, "depth": depth(d.code), "level": d.level, "name": d.name,
                 "parent": d.parent_code, "anc": ancestors(d.code), "gj": json.dumps(d.geometry)}
                for d in drafts[start:start + CHUNK]]
        session.execute(text(
            "INSERT INTO import_work (idx, code, depth, level, name, parent_code, ancestors, gj) "
            "VALUES (:idx, :code, :depth, :level, :name, :parent, :anc, :gj)"), rows)
        if progress:
            progress(len(rows))
    session.execute(text("UPDATE import_work SET geom = ST_SetSRID(ST_GeomFromGeoJSON(gj), 4326), gj = NULL"))


def _check_rings(session: Session, repair: bool) -> None:
    if not repair:
        bad = session.execute(text("SELECT idx, code, ST_IsValidReason(geom) FROM import_work "
                                   "WHERE NOT ST_IsValid(geom) ORDER BY idx LIMIT 1")).first()
        if bad:
            raise InvalidArgument(f"feature {bad[0]} ({bad[1]}): invalid polygon: {bad[2]} "
                                  f"(the repair option, --repair, repairs it and reports the repair)")
        return
    # ST_MakeValid's "structure" method keeps the area the rings enclose (a ring folded over
    # itself loses the fold) rather than every loop of the line work.
    session.execute(text(f"""
        CREATE TEMP TABLE import_repaired ON COMMIT DROP AS
        SELECT idx, code, ST_IsValidReason(geom) AS reason, {_area_m2("geom")} AS area_before,
               {_polygonal("ST_MakeValid(geom, 'method=structure keepcollapsed=false')")} AS repaired
        FROM import_work WHERE NOT ST_IsValid(geom)"""))
    empty = session.execute(text("SELECT idx, code, reason FROM import_repaired "
                                 "WHERE ST_IsEmpty(repaired) ORDER BY idx LIMIT 1")).first()
    if empty:
        raise InvalidArgument(f"feature {empty[0]} ({empty[1]}): invalid polygon: {empty[2]}, "
                              f"and nothing is left of it once repaired")
    session.execute(text("""
        UPDATE import_work w SET geom = r.repaired FROM import_repaired r WHERE w.code = r.code"""))
    session.execute(text("ALTER TABLE import_repaired ADD COLUMN area_m2 float8"))
    session.execute(text(f"UPDATE import_repaired SET area_m2 = abs({_area_m2('repaired')} - area_before)"))


def _check_parents_exist(session: Session) -> None:
    bad = session.execute(text("""
        SELECT s.idx, s.code, s.parent_code FROM import_work s
        WHERE s.parent_code IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM import_work p WHERE p.code = s.parent_code)
          AND NOT EXISTS (SELECT 1 FROM grid.units u WHERE u.code = s.parent_code)
        ORDER BY s.idx LIMIT 1""")).first()
    if bad:
        raise InvalidArgument(f"feature {bad[0]} ({bad[1]}): parent {bad[2]} is neither stored nor in the import")


def _add_stored_family(session: Session) -> None:
    """The stored units the import is judged against: the parents, siblings and children of the
    imported units (idx NULL: read, never written)."""
    session.execute(text("""
        INSERT INTO import_work (idx, code, depth, level, name, parent_code, ancestors, geom)
        SELECT NULL, u.code, coalesce(array_length(u.ancestors, 1), 0) + 1, u.level, u.name, u.parent_code,
               u.ancestors, u.geom
        FROM grid.units u
        WHERE u.code NOT IN (SELECT code FROM import_work)
          AND (u.parent_code IN (SELECT parent_code FROM import_work)
               OR u.parent_code IN (SELECT code FROM import_work)
               OR u.code IN (SELECT parent_code FROM import_work))"""))
    session.execute(text("CREATE INDEX ON import_work (parent_code)"))
    session.execute(text("CREATE INDEX ON import_work USING gist (geom)"))
    session.execute(text("ANALYZE import_work"))


def _refuse(session: Session, params: dict, message: str, rows_sql: str, beyond_sql: str) -> None:
    """Raises for the first row (by feature index) of rows_sql (idx, code, other_code, part, ...)
    that is beyond the tolerance, with the size of the violation and the offending part as
    GeoJSON; returns when there is none."""
    bad = session.execute(text(f"""
        SELECT idx, code, other_code FROM ({rows_sql}) v WHERE {beyond_sql}
        ORDER BY idx, other_code LIMIT 1"""), params).first()
    if bad is None:
        return
    idx, code, other = bad
    one = {"code": code, "other": other}
    area, geojson = session.execute(text(f"""
        SELECT {_area_m2("part")}, ST_AsGeoJSON(part, 9) FROM ({rows_sql}) v
        WHERE code = :code AND other_code = :other"""), {**params, **one}).one()

    def beyond(tolerance: float) -> bool:
        return session.scalar(text(f"SELECT {beyond_sql} FROM ({rows_sql}) v "
                                   f"WHERE code = :code AND other_code = :other"),
                              {**params, **one, "tol": tolerance})

    raise InvalidArgument(f"feature {idx} ({code}): " + message.format(
        other=other, area=f"{area:,.1f} m²", reach=f"{_least_tolerance(beyond, params['tol']):,.2f} m",
        tol=f"{params['tol']:g} m", geojson=_short_geojson(session, geojson)))


def _least_tolerance(beyond: Callable[[float], bool], tolerance: float) -> float:
    """How far the violation reaches: the least tolerance that would have accepted it, by
    bisection on the same test (to 5 mm or 0.1 %). The error path only."""
    low, high = tolerance, max(2 * tolerance, 1.0)
    while beyond(high):
        low, high = high, high * 4
    while high - low > max(0.005, high * 0.001):
        middle = (low + high) / 2
        low, high = (middle, high) if beyond(middle) else (low, middle)
    return high


def _short_geojson(session: Session, geojson: str) -> str:
    """The offending part as GeoJSON, simplified until it fits in an error message."""
    if len(geojson) <= MESSAGE_GEOJSON_CHARS:
        return geojson
    step = 1e-6
    while step < 1:
        shorter = session.scalar(text(
            "SELECT ST_AsGeoJSON(ST_Multi(ST_SimplifyPreserveTopology(ST_GeomFromGeoJSON(:gj), :step)), 7)"),
            {"gj": geojson, "step": step})
        if len(shorter) <= MESSAGE_GEOJSON_CHARS:
            return f"(simplified to {step:g}°) {shorter}"
        step *= 4
    envelope = session.scalar(text("SELECT ST_AsGeoJSON(ST_Envelope(ST_GeomFromGeoJSON(:gj)), 7)"), {"gj": geojson})
    return f"(its bounding box) {envelope}"


def _clip_to_parents(session: Session, params: dict) -> None:
    _adjust(session, params, CLIPPED, find=f"""
        SELECT c.idx, c.code, p.code, {_polygonal("ST_Difference(c.geom, p.geom)")}
        FROM import_work c JOIN import_work p ON p.code = c.parent_code
        WHERE c.idx IS NOT NULL AND c.depth = :depth AND NOT ST_CoveredBy(c.geom, p.geom)""",
        judged="SELECT o.idx, o.code, o.other_code, o.part, p.geom AS parent FROM import_parts o "
               "JOIN import_work p ON p.code = o.other_code",
        beyond=_beyond("part", "parent"),
        refusal="not inside its parent {other}: {area} lies outside it, reaching {reach} from its border "
                "(tolerance {tol}); the part outside: {geojson}",
        change=f"""
        UPDATE import_work c SET geom = {_polygonal("ST_Intersection(c.geom, p.geom)")}
        FROM import_parts o JOIN import_work p ON p.code = o.other_code WHERE c.code = o.code""",
        emptied="nothing of it is left inside its parent")


def _resolve_sibling_overlaps(session: Session, params: dict) -> None:
    # Each overlapping pair once: the imported unit that gives the overlap up (`code`), and the
    # sibling that keeps it (`other_code`): the lower code, or a stored sibling not in the import.
    _adjust(session, params, OVERLAP, find=f"""
        SELECT l.idx, l.code, w.code, {_polygonal("ST_Intersection(l.geom, w.geom)")}
        FROM import_work l JOIN import_work w
          ON coalesce(w.parent_code, '') = coalesce(l.parent_code, '') AND w.depth = l.depth
         AND w.code <> l.code AND l.geom && w.geom
        WHERE l.idx IS NOT NULL AND l.depth = :depth AND (w.idx IS NULL OR w.code < l.code)
          AND ST_Relate(l.geom, w.geom, '2********')""",
        judged="SELECT o.idx, o.code, o.other_code, o.part, l.geom AS loser, w.geom AS winner FROM import_parts o "
               "JOIN import_work l ON l.code = o.code JOIN import_work w ON w.code = o.other_code",
        beyond=f"({_beyond('part', 'winner')} OR {_beyond('part', 'loser')})",
        refusal="overlaps its sibling {other}: {area} in common, reaching {reach} into one of them "
                "(tolerance {tol}); the overlap: {geojson}",
        change=f"""
        UPDATE import_work l SET geom = {_polygonal("ST_Difference(l.geom, o.given)")}
        FROM (SELECT code, ST_Union(part) AS given FROM import_parts GROUP BY code) o WHERE l.code = o.code""",
        emptied="nothing of it is left once its overlaps with its siblings are removed")


def _adjust(session: Session, params: dict, kind: str, *, find: str, judged: str, beyond: str, refusal: str,
            change: str, emptied: str) -> None:
    """One kind of adjustment at one level: `find` the parts to remove (idx, code, other_code,
    part), refuse the first beyond the tolerance, `change` the units, record what changed."""
    session.execute(text(f"INSERT INTO import_parts (idx, code, other_code, part) {find}"), params)
    session.execute(text("DELETE FROM import_parts WHERE ST_IsEmpty(part)"))
    _refuse(session, params, refusal, judged, beyond)
    session.execute(text(change))
    _record_and_clear(session, kind)
    _refuse_emptied(session, params, emptied)


def _check_stored_children(session: Session, params: dict) -> None:
    """A stored child that is not in the import must still lie inside its re-imported parent."""
    session.execute(text(f"""
        INSERT INTO import_parts (idx, code, other_code, part)
        SELECT s.idx, s.code, c.code, {_polygonal("ST_Difference(c.geom, s.geom)")}
        FROM import_work s JOIN import_work c ON c.parent_code = s.code
        WHERE s.idx IS NOT NULL AND s.depth = :depth AND c.idx IS NULL AND NOT ST_CoveredBy(c.geom, s.geom)"""),
        params)
    stored = "SELECT o.idx, o.code, o.other_code, o.part, s.geom AS parent FROM import_parts o " \
             "JOIN import_work s ON s.code = o.code WHERE NOT ST_IsEmpty(o.part)"
    _refuse(session, params, "no longer contains its stored child {other}: {area} of the child would lie "
            "outside it, reaching {reach} from its border (tolerance {tol}); that part: {geojson}",
            stored, _beyond("part", "parent"))
    session.execute(text("TRUNCATE import_parts"))


def _record_and_clear(session: Session, kind: str) -> None:
    session.execute(text(f"""
        INSERT INTO import_adjustments (idx, code, kind, area_m2, other_code)
        SELECT idx, code, :kind, {_area_m2("part")}, other_code FROM import_parts"""), {"kind": kind})


def _refuse_emptied(session: Session, params: dict, why: str) -> None:
    bad = session.execute(text("""
        SELECT w.idx, w.code FROM import_work w WHERE w.code IN (SELECT code FROM import_parts)
          AND ST_IsEmpty(w.geom) ORDER BY w.idx LIMIT 1""")).first()
    session.execute(text("TRUNCATE import_parts"))
    if bad:
        raise InvalidArgument(f"feature {bad[0]} ({bad[1]}): {why} (tolerance {params['tol']:g} m)")


def _narrow(piece: str) -> str:
    """No disc as wide as the tolerance fits inside the piece."""
    return f"ST_IsEmpty(ST_Buffer({_metres(piece, _mid_lat(piece))}, -:tol / 2))"


def _report_slivers_and_gaps(session: Session, params: dict) -> None:
    if params["tol"] == 0:
        return
    session.execute(text(f"""
        INSERT INTO import_adjustments (idx, code, kind, area_m2, detail)
        SELECT w.idx, w.code, :kind, sum({_area_m2("d.geom")}), count(*) || ' part(s)'
        FROM import_work w CROSS JOIN LATERAL ST_Dump(w.geom) d
        WHERE w.idx IS NOT NULL AND ST_NumGeometries(w.geom) > 1 AND {_narrow("d.geom")}
        GROUP BY w.idx, w.code"""), {**params, "kind": SLIVER})
    session.execute(text(f"""
        INSERT INTO import_adjustments (idx, code, kind, area_m2, detail)
        SELECT p.idx, p.code, :kind, sum({_area_m2("d.geom")}), count(*) || ' gap(s)'
        FROM (SELECT p.idx, p.code, ST_Difference(p.geom, c.children) AS uncovered
              FROM (SELECT parent_code, ST_Union(geom) AS children FROM import_work
                    WHERE parent_code IN (SELECT code FROM import_work WHERE idx IS NOT NULL)
                    GROUP BY parent_code) c
              JOIN import_work p ON p.code = c.parent_code) p
        CROSS JOIN LATERAL ST_Dump(ST_CollectionExtract(p.uncovered, 3)) d
        WHERE {_narrow("d.geom")}
        GROUP BY p.idx, p.code"""), {**params, "kind": GAP})


def _write(session: Session, total: int) -> Written:
    """Upserts by code. A unit whose name and point set are as stored is unchanged, even when a
    clip wrote its rings from another vertex."""
    changed = session.execute(text("""
        INSERT INTO grid.units AS u (code, level, name, parent_code, ancestors, geom, area_m2)
        SELECT code, level, name, parent_code, ancestors, geom, ST_Area(geom::geography)
        FROM import_work WHERE idx IS NOT NULL ORDER BY depth, code
        ON CONFLICT (code) DO UPDATE SET
            name = EXCLUDED.name, geom = EXCLUDED.geom, area_m2 = EXCLUDED.area_m2, updated_at = now()
        WHERE u.name IS DISTINCT FROM EXCLUDED.name
           OR (ST_AsBinary(u.geom) <> ST_AsBinary(EXCLUDED.geom) AND NOT ST_Equals(u.geom, EXCLUDED.geom))
        RETURNING code, (xmax = 0) AS created""")).all()
    created = sum(1 for row in changed if row.created)
    adjustments = [Adjustment(r.idx, r.code, r.kind, r.area_m2, r.other_code, r.detail) for r in session.execute(text(
        "SELECT idx, code, kind, area_m2, other_code, detail FROM import_adjustments ORDER BY idx, kind, other_code"))]
    return Written(created, len(changed) - created, total - len(changed), sorted(r.code for r in changed), adjustments)
