"""Locate from memory, beside raw PostGIS over psycopg on the same grids in the same run.

A city (a GeoJSON FeatureCollection file, `--city`; `--city realcity`, the 22,680 grids on real
county boundaries of demo/realcity.py; by default a synthetic city of 20,000 grids) is imported
into a fresh database; then, on the same random points inside its grids: raw ST_Covers lookups
over psycopg, single Locate calls over gRPC and nameko RPC, and LocateMany batches over gRPC, at
1 and 8 clients, with the CPU time each lookup costs its clients and its server; the time to
load and build the index of the leaf grids; and the resident memory of the gRPC server process
that holds it. Prints figures and ratios; asserts nothing about speed."""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable
from pathlib import Path

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.bench_pipeline import private_vhost  # noqa: E402
from demo.city import CityPlan, build  # noqa: E402
from demo.run import fresh_database  # noqa: E402
from demo.supervisor import Supervisor  # noqa: E402
from gridbus.common.v1 import geo_pb2  # noqa: E402
from gridbus.grid.v1 import grid_pb2 as pb, grid_pb2_grpc  # noqa: E402
from shared import tls  # noqa: E402
from shared import datum  # noqa: E402
from shared.auth import SERVICE, Principal, mint_token  # noqa: E402
from shared.config import settings  # noqa: E402
from shared.health import check_grpc, check_nameko, wait_until  # noqa: E402

# 4 districts x 5 streets x 5 communities x (10 x 20) grids = 20,000 grids.
SYNTHETIC = CityPlan(city_code="440300", name="Bench City", west=121.0, south=30.0, east=122.0, north=31.0,
                     districts=4, streets=5, communities=5, grids_x=10, grids_y=20)
RAW_ST_COVERS = ("SELECT code FROM grid.units WHERE level = 'grid' AND "
                 "ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY code LIMIT 1")


@dataclass
class Run:
    rate: float                      # items per second
    client_cpu_us: float             # this process's CPU time per item: the clients'
    server_cpu_us: float | None      # the serving processes' CPU time per item (None: not measured)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_clients(clients: int, work_items, make_client, call, server_pids=None) -> Run:
    """`clients` concurrent clients, each with its own connection, share the items. server_pids,
    given the clients made, names the processes that serve them (a PostgreSQL backend per
    connection, the gRPC server), whose CPU time is counted beside the clients'."""
    share = [work_items[i::clients] for i in range(clients)]
    barrier = threading.Barrier(clients + 1)
    made = []

    def work(mine):
        try:
            client = make_client()
            made.append(client)
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
        pids = list(server_pids(made)) if server_pids else []
        server_before, client_before = sum(map(cpu_seconds, pids)), own_cpu_seconds()
        start = time.perf_counter()
        for f in futures:
            f.result()
        seconds = time.perf_counter() - start
        client_cpu, server_cpu = own_cpu_seconds() - client_before, sum(map(cpu_seconds, pids)) - server_before
    per_item = 1e6 / len(work_items)
    return Run(len(work_items) / seconds, client_cpu * per_item, server_cpu * per_item if pids else None)


def per_point(run: Run, batch: int) -> Run:
    """A run of batches, per point."""
    return Run(run.rate * batch, run.client_cpu_us / batch,
               None if run.server_cpu_us is None else run.server_cpu_us / batch)


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident now, resident peak) of a process, in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def process_tree(pid: int) -> list[int]:
    """A process and its descendants (the grid server's processes, GRIDBUS_GRID_GRPC_PROCESSES)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [pid] + [p for child in children for p in process_tree(child)]


def largest_rss_mb(pid: int) -> tuple[float, float]:
    """rss_mb() of the process tree's largest process: each server process holds its own index."""
    return max((rss_mb(p) for p in process_tree(pid)), key=lambda rss: rss[1])


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


def load_city(name: str | None) -> dict:
    if name is None:
        return build(SYNTHETIC)
    if name == "realcity":
        from demo import realcity
        return realcity.build()
    return json.loads(Path(name).read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--city", help="a GeoJSON FeatureCollection file of units, or `realcity` for the 22,680 grids "
                                       "on Shijiazhuang's real county boundaries (demo/realcity.py; `make bench "
                                       "BENCH_CITY=realcity`); default: 20,000 synthetic grids")
    parser.add_argument("--lookups", type=int, default=4000, help="single lookups per path and client count")
    parser.add_argument("--many-points", type=int, default=200_000, help="points sent through LocateMany")
    parser.add_argument("--batch", type=int, default=1000, help="points per LocateMany call")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=5, help="turns the paths take, each with a share of the items")
    args = parser.parse_args()

    url = os.environ.get("GRIDBUS_BENCH_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/gridbus_bench")
    os.environ["GRIDBUS_DATABASE_URL"] = url
    from services.grid import operations as ops
    from services.registry import migrate
    from shared.spatial import PolygonIndex
    s = settings()
    fresh_database(url)
    migrate(url)
    city = load_city(args.city)
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
    # A vhost of its own: on the default one, another grid worker (a `make run`) would answer too.
    amqp_uri, drop_vhost = private_vhost(s.amqp_uri)
    sup = Supervisor({**os.environ, "GRIDBUS_GRID_GRPC_PORT": str(port), "GRIDBUS_AMQP_URI": amqp_uri}, log_dir)
    server = sup.add("grid-grpc", sys.executable, "-m", "services.grid.grpc_server")
    sup.add("grid-nameko", sys.executable, "-m", "services.nameko_run", "services.grid.service")
    try:
        bench(url, port, amqp_uri, server.popen.pid, points, args)
    finally:
        sup.stop()
        drop_vhost()


@dataclass
class Path_:
    """One way of looking points up: its work items (points or batches) and how a client does one."""
    name: str
    items: list
    make_client: Callable
    call: Callable
    server_pids: Callable | None = None
    points_per_item: int = 1


def interleaved(paths: list[Path_], clients: int, rounds: int) -> dict[str, Run]:
    """Each path's median run at `clients` clients. The paths take turns, round after round, each
    round a share of every path's items, so that a machine whose load comes and goes (other
    work, CPU frequency) weighs on all of them alike, the raw baseline included."""
    runs: dict[str, list[Run]] = {p.name: [] for p in paths}
    for r in range(rounds):
        for p in paths:
            run = run_clients(clients, p.items[r::rounds], p.make_client, p.call, p.server_pids)
            runs[p.name].append(per_point(run, p.points_per_item))
    return {name: median_run(rs) for name, rs in runs.items()}


def median_run(runs: list[Run]) -> Run:
    servers = [r.server_cpu_us for r in runs if r.server_cpu_us is not None]
    return Run(statistics.median(r.rate for r in runs), statistics.median(r.client_cpu_us for r in runs),
               statistics.median(servers) if servers else None)


def bench(url: str, port: int, amqp_uri: str, server_pid: int, points, args) -> None:
    from nameko.standalone.rpc import ClusterRpcProxy
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    token = mint_token("bench", "service", [])
    md = [("authorization", f"Bearer {token}")]
    wait_until(lambda: check_grpc(f"127.0.0.1:{port}", timeout=1), timeout=120)
    wait_until(lambda: check_nameko(amqp_uri, "grid", timeout=2), timeout=120)
    server_processes = process_tree(server_pid)
    serving_rss = largest_rss_mb(server_pid)
    singles = points[:args.lookups]
    serving = lambda _: server_processes  # noqa: E731 - the grid gRPC server serves every gRPC client

    def psycopg_client():
        return psycopg.connect(dsn, autocommit=True, prepare_threshold=0)

    def connected_channel():
        channel = tls.channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)  # connected before the clock starts
        return channel

    def grpc_client():
        return grid_pb2_grpc.GridServiceStub(connected_channel())

    def nameko_client():
        proxy = ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=30, context_data={"authorization": f"Bearer {token}"})
        return proxy.start()

    health = health_pb2.HealthCheckRequest(service="")
    batches = [pb.LocateManyRequest(points=[geo_pb2.GeoPoint(lon=x, lat=y) for x, y in points[i:i + args.batch]])
               for i in range(0, args.many_points, args.batch)]
    gcj_lons, gcj_lats = datum.wgs84_to_gcj02(*zip(*points[:args.many_points]))
    gcj = [pb.LocateManyRequest(points=[geo_pb2.GeoPoint(lon=x, lat=y, datum=geo_pb2.DATUM_GCJ02)
                                        for x, y in zip(gcj_lons[i:i + args.batch], gcj_lats[i:i + args.batch])])
           for i in range(0, args.many_points, args.batch)]
    nameko_points = singles[: max(len(singles) // 4, 1)]  # RPC over the broker is slower; fewer calls keep the run short
    paths = [
        Path_("raw ST_Covers (psycopg)", singles, psycopg_client,
              lambda conn, p: conn.execute(RAW_ST_COVERS, p).fetchone(),
              lambda conns: [conn.info.backend_pid for conn in conns]),
        Path_("Locate via gRPC", singles, grpc_client,
              lambda stub, p: stub.Locate(pb.LocateRequest(lon=p[0], lat=p[1]), metadata=md), serving),
        # The same server's empty call: what one gRPC round trip costs before any work is done.
        Path_("  an empty call (grpc.health Check)", singles, lambda: health_pb2_grpc.HealthStub(connected_channel()),
              lambda stub, _: stub.Check(health), serving),
        Path_(f"LocateMany via gRPC ({args.batch}/call), per point", batches, grpc_client,
              lambda stub, b: stub.LocateMany(b, metadata=md), serving, args.batch),
        Path_("  the same points sent in GCJ-02", gcj, grpc_client,
              lambda stub, b: stub.LocateMany(b, metadata=md), serving, args.batch),
        Path_("grid.locate via nameko RPC", nameko_points, nameko_client, lambda cluster, p: cluster.grid.locate(*p)),
    ]
    by_clients = {c: interleaved(paths, c, args.rounds) for c in args.clients}
    results = {p.name: {c: by_clients[c][p.name] for c in args.clients} for p in paths}
    after_rss = largest_rss_mb(server_pid)

    baseline = results["raw ST_Covers (psycopg)"]
    print(f"\nLocate: {len(singles)} random points inside the grids per single-lookup path "
          f"({len(nameko_points)} over nameko), {args.many_points} through LocateMany; {os.cpu_count()} cores; "
          f"the paths take turns in {args.rounds} rounds, each figure the median round")
    header = f"{'path':<44}" + "".join(f"{f'{c} client(s)':>16}{'vs raw':>9}" for c in args.clients)
    print(header)
    print("-" * len(header))
    for name, per in results.items():
        print(f"{name:<44}" + "".join(f"{per[c].rate:>14,.0f}/s{per[c].rate / baseline[c].rate:>9.2f}"
                                      for c in args.clients))
    # Where the time goes: CPU time per call, of the clients (this process) and of what serves them
    # (raw: the PostgreSQL backends; gRPC: the grid server). On a machine the clients share with
    # the servers, a path whose calls cost more CPU cannot keep up, however fast its lookup.
    print(f"\nCPU time per lookup, µs: clients + server (raw: the PostgreSQL backends; gRPC: the grid server), "
          "and raw's total over this path's")
    header = f"{'path':<44}" + "".join(f"{f'{c} client(s)':>28}" for c in args.clients)
    print(header)
    print("-" * len(header))
    for name, per in results.items():
        cells = []
        for c in args.clients:
            run, raw = per[c], baseline[c]
            if run.server_cpu_us is None:
                cells.append(f"{run.client_cpu_us:>8.0f} + {'-':>5}{'':>14}")
                continue
            total = run.client_cpu_us + run.server_cpu_us
            ratio = (raw.client_cpu_us + raw.server_cpu_us) / total if total else float("inf")
            cells.append(f"{run.client_cpu_us:>8.1f} + {run.server_cpu_us:>6.1f} = {total:>6.1f} {ratio:>5.2f}")
        print(f"{name:<44}" + "".join(f"{cell:>28}" for cell in cells))
    print(f"\ngrid gRPC server (holds the index; {settings().grid_grpc_processes} process(es), the largest): "
          f"resident {serving_rss[0]:.0f} MB when serving, {after_rss[0]:.0f} MB after the runs, "
          f"peak {after_rss[1]:.0f} MB")


if __name__ == "__main__":
    main()
