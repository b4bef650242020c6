"""Importing the real-boundary city (Shijiazhuang: 22 districts and counties, 22,680 grids,
25,503 units; demo/realcity.py) with `gridbus grid import`, beside raw PostGIS on the same
features in the same run: loading them without any check, and the old strict check alone
(ST_CoveredBy of every child in its parent). Prints figures and ratios; asserts nothing."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from demo.realcity import RealCityPlan, build  # noqa: E402
from demo.run import fresh_database  # noqa: E402

RAW_TABLE = """CREATE TEMP TABLE raw_units (code text PRIMARY KEY, parent_code text,
                                             geom geometry(MultiPolygon, 4326))"""


def raw_load(dsn: str, doc: dict) -> tuple[float, float]:
    """Seconds to COPY the features into a bare table and parse their geometry, then seconds
    for the old strict check alone (every child ST_CoveredBy its parent)."""
    rows = [(f["properties"]["code"], json.dumps(f["geometry"])) for f in doc["features"]]
    with psycopg.connect(dsn) as conn:
        conn.execute(RAW_TABLE)
        started = time.perf_counter()
        conn.execute("CREATE TEMP TABLE raw_json (code text, gj text)")
        with conn.cursor().copy("COPY raw_json (code, gj) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute("""INSERT INTO raw_units SELECT code,
                            CASE WHEN length(code) = 6 AND code LIKE '%00' THEN NULL
                                 WHEN length(code) = 6 THEN left(code, 4) || '00' ELSE left(code, -3) END,
                            ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(gj), 4326)) FROM raw_json""")
        load = time.perf_counter() - started
        started = time.perf_counter()
        not_covered = conn.execute("""SELECT count(*) FROM raw_units c JOIN raw_units p ON p.code = c.parent_code
                                      WHERE NOT ST_CoveredBy(c.geom, p.geom)""").fetchone()[0]
        check = time.perf_counter() - started
    print(f"raw PostGIS: COPY + parse {len(rows)} features {load:.2f}s; strict ST_CoveredBy check {check:.2f}s "
          f"({not_covered} children 'not covered' by their parent: floating-point noise)")
    return load, check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=RealCityPlan.seed)
    args = parser.parse_args()
    url = os.environ.get("GRIDBUS_BENCH_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/gridbus_bench")
    os.environ["GRIDBUS_DATABASE_URL"] = url
    from services.registry import migrate
    fresh_database(url)
    migrate(url)

    started = time.perf_counter()
    doc = build(RealCityPlan(seed=args.seed))
    grids = sum(1 for f in doc["features"] if len(f["properties"]["code"]) == 15)
    print(f"built the city: {len(doc['features'])} units, {grids} grids in {time.perf_counter() - started:.1f}s "
          f"({os.cpu_count()} cores)")
    raw, strict = raw_load(url.replace("postgresql+psycopg://", "postgresql://"), doc)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shijiazhuang.geojson"
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        command = [sys.executable, "-m", "services.cli", "grid", "import", str(path), "--show", "5"]
        print(f"\n$ gridbus grid import {path.name} --show 5   (the whole command, process start included)")
        for attempt in ("first import", "same file again"):
            started = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - started
            print(f"-- {attempt}: {seconds:.1f}s, {len(doc['features']) / seconds:,.0f} units/s, "
                  f"{seconds / raw:.1f}x raw COPY + parse, {seconds / (raw + strict):.1f}x raw load + strict check")
            print(done.stdout.rstrip())


if __name__ == "__main__":
    main()
