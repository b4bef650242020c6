"""Locate lookups per second: through gRPC and nameko RPC, beside raw PostGIS over psycopg on the
same 10,000 grids in the same run. Prints figures and ratios; asserts nothing about speed."""
from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from demo.city import CityPlan, build  # noqa: E402
from demo.run import fresh_database  # noqa: E402
from demo.supervisor import Supervisor  # noqa: E402
from gridbus.grid.v1 import grid_pb2 as pb, grid_pb2_grpc  # noqa: E402
from shared.auth import SERVICE, Principal, mint_token  # noqa: E402
from shared.health import check_grpc, check_nameko, wait_until  # noqa: E402

PLAN = CityPlan(city_code="440300", name="Bench City", west=121.0, south=30.0, east=122.0, north=31.0,
                districts=4, streets=5, communities=5, grids_x=10, grids_y=10)
RAW_SQL = {
    "ST_Covers": "SELECT code FROM grid.units WHERE level = 'grid' AND "
                 "ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY code LIMIT 1",
    "ST_Contains": "SELECT code FROM grid.units WHERE level = 'grid' AND "
                   "ST_Contains(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) LIMIT 1",
}


def points(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(rng.uniform(PLAN.west, PLAN.east), rng.uniform(PLAN.south, PLAN.north)) for _ in range(n)]


def run_clients(clients: int, pts, make_client, lookup) -> float:
    """Lookups per second with `clients` concurrent clients, each with its own connection."""
    share = [pts[i::clients] for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def work(mine):
        try:
            client = make_client()
        except BaseException:
            barrier.abort()  # let the others and the timer go, rather than wait forever
            raise
        barrier.wait()
        for lon, lat in mine:
            lookup(client, lon, lat)

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
    return len(pts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lookups", type=int, default=4000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    url = os.environ.get("GRIDBUS_BENCH_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/gridbus_bench")
    os.environ["GRIDBUS_DATABASE_URL"] = url
    from services.grid import operations as ops
    from services.registry import migrate
    from shared.config import settings
    s = settings()
    fresh_database(url)
    migrate(url)
    started = time.perf_counter()
    ops.import_units(Principal("bench", SERVICE, ()), build(PLAN))
    print(f"imported {PLAN.grid_count} grids (+ parents) in {time.perf_counter() - started:.1f}s")

    port = 50000 + os.getpid() % 10000
    log_dir = ROOT / ".run" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    sup = Supervisor({**os.environ, "GRIDBUS_GRID_GRPC_PORT": str(port)}, log_dir)
    bin_dir = Path(sys.executable).parent
    sup.add("grid-grpc", sys.executable, "-m", "services.grid.grpc_server")
    sup.add("grid-nameko", str(bin_dir / "nameko"), "run", "services.grid.service", "--broker", s.amqp_uri)
    try:
        bench(url, port, s.amqp_uri, args)
    finally:
        sup.stop()


def bench(url: str, port: int, amqp_uri: str, args) -> None:
    from nameko.standalone.rpc import ClusterRpcProxy
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    token = mint_token("bench", "service", [])
    md = [("authorization", f"Bearer {token}")]
    wait_until(lambda: check_grpc(f"127.0.0.1:{port}", timeout=1))
    wait_until(lambda: check_nameko(amqp_uri, "grid", timeout=2))
    pts = points(args.lookups, 1)
    results: dict[str, dict[int, float]] = {}

    def psycopg_client():
        return psycopg.connect(dsn, autocommit=True, prepare_threshold=0)

    for name, sql in RAW_SQL.items():
        results[f"raw {name} (psycopg)"] = {
            c: run_clients(c, pts, psycopg_client, lambda conn, lon, lat, sql=sql: conn.execute(sql, (lon, lat)).fetchone())
            for c in args.clients}

    def grpc_client():
        return grid_pb2_grpc.GridServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

    results["Locate via gRPC"] = {
        c: run_clients(c, pts, grpc_client, lambda stub, lon, lat: stub.Locate(pb.LocateRequest(lon=lon, lat=lat), metadata=md))
        for c in args.clients}

    def nameko_client():
        proxy = ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30, context_data={"authorization": f"Bearer {token}"})
        return proxy.start()

    nameko_pts = pts[: max(len(pts) // 4, 1)]  # RPC over the broker is slower; fewer calls keep the run short
    results["grid.locate via nameko RPC"] = {
        c: run_clients(c, nameko_pts, nameko_client, lambda cluster, lon, lat: cluster.grid.locate(lon, lat))
        for c in args.clients}

    baseline = results["raw ST_Covers (psycopg)"]
    print(f"\nLocate on {PLAN.grid_count} grids, {len(pts)} random points ({len(nameko_pts)} over nameko), "
          f"{os.cpu_count()} cores")
    header = f"{'path':<30}" + "".join(f"{f'{c} client(s)':>16}{'vs raw':>9}" for c in args.clients)
    print(header)
    print("-" * len(header))
    for name, per in results.items():
        row = f"{name:<30}"
        for c in args.clients:
            row += f"{per[c]:>14,.0f}/s{per[c] / baseline[c]:>9.2f}"
        print(row)


if __name__ == "__main__":
    main()
