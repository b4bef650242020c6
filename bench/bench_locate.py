"""Locate from memory, beside raw PostGIS over psycopg on the same grids in the same run.

A city (a GeoJSON FeatureCollection file, `--city`, or by default a synthetic city of 20,000
grids) is imported into a fresh database; then, on the same random points inside its grids:
raw ST_Covers lookups over psycopg, single Locate calls over gRPC and nameko RPC, and LocateMany
batches over gRPC, at 1 and 8 clients; the time to load and build the index of the leaf grids;
and the resident memory of the gRPC server process that holds it. Prints figures and ratios;
asserts nothing about speed."""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from demo.city import CityPlan, build  # noqa: E402
from demo.run import fresh_database  # noqa: E402
from demo.supervisor import Supervisor  # noqa: E402
from gridbus.common.v1 import geo_pb2  # noqa: E402
from gridbus.grid.v1 import grid_pb2 as pb, grid_pb2_grpc  # noqa: E402
from shared import datum  # noqa: E402
from shared.auth import SERVICE, Principal, mint_token  # noqa: E402
from shared.health import check_grpc, check_nameko, wait_until  # noqa: E402

# 4 districts x 5 streets x 5 communities x (10 x 20) grids = 20,000 grids.
SYNTHETIC = CityPlan(city_code="440300", name="Bench City", west=121.0, south=30.0, east=122.0, north=31.0,
                     districts=4, streets=5, communities=5, grids_x=10, grids_y=20)
RAW_ST_COVERS = ("SELECT code FROM grid.units WHERE level = 'grid' AND "
                 "ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY code LIMIT 1")


def run_clients(clients: int, work_items, make_client, call) -> float:
    """Items done per second with `clients` concurrent clients, each with its own connection."""
    share = [work_items[i::clients] for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def work(mine):
        try:
            client = make_client()
        except BaseException:
            barrier.abort()  # let the others and the timer go, rather than wait forever
            raise
        barrier.wait()
        for item in mine:
            call(client, item)

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(work, mine) for mine in share]
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            for f in futures:
                f.result()  # raises the client's own error
            raise
        start = time.perf_counter()
        for f in futures:
            f.result()
    return len(work_items) / (time.perf_counter() - start)


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident now, resident peak) of a process, in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def covered_points(index, n: int, seed: int) -> list[tuple[float, float]]:
    """n random points that some leaf grid covers (a real city's bounding box is partly outside it)."""
    import numpy as np
    rng = random.Random(seed)
    west, south, east, north = index.bounds()
    found: list[tuple[float, float]] = []
    while len(found) < n:
        lons = np.array([rng.uniform(west, east) for _ in range(n)])
        lats = np.array([rng.uniform(south, north) for _ in range(n)])
        inside = index.positions(lons, lats) >= 0
        found += list(zip(lons[inside].tolist(), lats[inside].tolist()))
    return found[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--city", type=Path, help="a GeoJSON FeatureCollection of units (default: 20,000 synthetic grids)")
    parser.add_argument("--lookups", type=int, default=4000, help="single lookups per path and client count")
    parser.add_argument("--many-points", type=int, default=200_000, help="points sent through LocateMany")
    parser.add_argument("--batch", type=int, default=1000, help="points per LocateMany call")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    url = os.environ.get("GRIDBUS_BENCH_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/gridbus_bench")
    os.environ["GRIDBUS_DATABASE_URL"] = url
    from services.grid import operations as ops
    from services.registry import migrate
    from shared.config import settings
    from shared.spatial import PolygonIndex
    s = settings()
    fresh_database(url)
    migrate(url)
    city = json.loads(args.city.read_text()) if args.city else build(SYNTHETIC)
    started = time.perf_counter()
    ops.import_units(Principal("bench", SERVICE, ()), city)
    print(f"imported {len(city['features'])} units in {time.perf_counter() - started:.1f}s")
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("ANALYZE grid.units")  # the raw baseline gets the planner's statistics

    started = time.perf_counter()
    rows = ops.leaf_grid_rows()
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    index = PolygonIndex(rows)
    built = time.perf_counter() - started
    vertices = sum(len(wkb) for _, _, wkb in rows) // 16  # WKB spends 16 bytes a vertex
    print(f"index of {len(index)} leaf grids (~{vertices:,} vertices): loaded in {loaded:.2f}s, "
          f"built in {built:.2f}s, {loaded + built:.2f}s in all")
    points = covered_points(index, max(args.lookups, args.many_points), seed=1)
    del rows, index

    port = 50000 + os.getpid() % 10000
    log_dir = ROOT / ".run" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    sup = Supervisor({**os.environ, "GRIDBUS_GRID_GRPC_PORT": str(port)}, log_dir)
    server = sup.add("grid-grpc", sys.executable, "-m", "services.grid.grpc_server")
    sup.add("grid-nameko", sys.executable, "-m", "services.nameko_run", "services.grid.service")
    try:
        bench(url, port, s.amqp_uri, server.popen.pid, points, args)
    finally:
        sup.stop()


def bench(url: str, port: int, amqp_uri: str, server_pid: int, points, args) -> None:
    from nameko.standalone.rpc import ClusterRpcProxy
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    token = mint_token("bench", "service", [])
    md = [("authorization", f"Bearer {token}")]
    wait_until(lambda: check_grpc(f"127.0.0.1:{port}", timeout=1), timeout=120)
    wait_until(lambda: check_nameko(amqp_uri, "grid", timeout=2), timeout=120)
    serving_rss = rss_mb(server_pid)
    singles = points[:args.lookups]
    results: dict[str, dict[int, float]] = {}

    def psycopg_client():
        return psycopg.connect(dsn, autocommit=True, prepare_threshold=0)

    results["raw ST_Covers (psycopg)"] = {
        c: run_clients(c, singles, psycopg_client, lambda conn, p: conn.execute(RAW_ST_COVERS, p).fetchone())
        for c in args.clients}

    def connected_channel():
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)  # connected before the clock starts
        return channel

    def grpc_client():
        return grid_pb2_grpc.GridServiceStub(connected_channel())

    results["Locate via gRPC"] = {
        c: run_clients(c, singles, grpc_client,
                       lambda stub, p: stub.Locate(pb.LocateRequest(lon=p[0], lat=p[1]), metadata=md))
        for c in args.clients}

    # The same server's empty call: what one gRPC round trip costs before any work is done.
    health = health_pb2.HealthCheckRequest(service="")
    results["  an empty call (grpc.health Check)"] = {
        c: run_clients(c, singles, lambda: health_pb2_grpc.HealthStub(connected_channel()),
                       lambda stub, _: stub.Check(health))
        for c in args.clients}

    batches = [pb.LocateManyRequest(points=[geo_pb2.GeoPoint(lon=x, lat=y) for x, y in points[i:i + args.batch]])
               for i in range(0, args.many_points, args.batch)]
    results[f"LocateMany via gRPC ({args.batch}/call), per point"] = {
        c: run_clients(c, batches, grpc_client, lambda stub, b: stub.LocateMany(b, metadata=md)) * args.batch
        for c in args.clients}
    gcj_lons, gcj_lats = datum.wgs84_to_gcj02(*zip(*points[:args.many_points]))
    gcj = [pb.LocateManyRequest(points=[geo_pb2.GeoPoint(lon=x, lat=y, datum=geo_pb2.DATUM_GCJ02)
                                        for x, y in zip(gcj_lons[i:i + args.batch], gcj_lats[i:i + args.batch])])
           for i in range(0, args.many_points, args.batch)]
    results["  the same points sent in GCJ-02"] = {
        c: run_clients(c, gcj, grpc_client, lambda stub, b: stub.LocateMany(b, metadata=md)) * args.batch
        for c in args.clients}

    def nameko_client():
        proxy = ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30, context_data={"authorization": f"Bearer {token}"})
        return proxy.start()

    nameko_points = singles[: max(len(singles) // 4, 1)]  # RPC over the broker is slower; fewer calls keep the run short
    results["grid.locate via nameko RPC"] = {
        c: run_clients(c, nameko_points, nameko_client, lambda cluster, p: cluster.grid.locate(*p))
        for c in args.clients}
    after_rss = rss_mb(server_pid)

    baseline = results["raw ST_Covers (psycopg)"]
    print(f"\nLocate: {len(singles)} random points inside the grids per single-lookup path "
          f"({len(nameko_points)} over nameko), {args.many_points} through LocateMany; {os.cpu_count()} cores")
    header = f"{'path':<44}" + "".join(f"{f'{c} client(s)':>16}{'vs raw':>9}" for c in args.clients)
    print(header)
    print("-" * len(header))
    for name, per in results.items():
        print(f"{name:<44}" + "".join(f"{per[c]:>14,.0f}/s{per[c] / baseline[c]:>9.2f}" for c in args.clients))
    print(f"\ngrid gRPC server (holds the index): resident {serving_rss[0]:.0f} MB when serving, "
          f"{after_rss[0]:.0f} MB after the runs, peak {after_rss[1]:.0f} MB")


if __name__ == "__main__":
    main()
