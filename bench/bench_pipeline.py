"""The whole path, officer to department: Report over gRPC -> pinned to a grid by PostGIS ->
stored -> `incidents.incident.reported` -> dispatch routes it (`dispatch.task.created`) ->
incidents moves it (`incidents.incident.dispatched`), at 1, 10, 100 and 1,000 simulated
officers. Prints throughput and p50/p95/p99 to each milestone, beside the raw broker
(kombu, persistent, confirms, publish -> consume) and raw PostGIS (pin + insert over psycopg)
rates measured in the same run. Asserts nothing about speed."""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path

import grpc
import psycopg
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.bench_incidents import CATEGORIES, PLAN, Subscriber, percentiles, raw_broker, run_concurrently  # noqa: E402
from demo import services  # noqa: E402
from demo.city import build  # noqa: E402
from demo.run import fresh_database  # noqa: E402
from demo.supervisor import Supervisor  # noqa: E402
from gridbus.incidents.v1 import incidents_pb2 as pb, incidents_pb2_grpc  # noqa: E402
from shared.auth import SERVICE, Principal, mint_token  # noqa: E402
from shared.health import check_grpc, check_nameko, wait_until  # noqa: E402

RAW_PIN_AND_STORE = (
    "WITH g AS (SELECT code FROM grid.units WHERE level = 'grid' AND "
    "ST_Covers(geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)) ORDER BY code LIMIT 1) "
    "INSERT INTO bench_raw (id, grid_code, location) SELECT %(id)s, g.code, "
    "ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) FROM g")


def point(rng):
    return rng.uniform(PLAN.west + 1e-4, PLAN.east - 1e-4), rng.uniform(PLAN.south + 1e-4, PLAN.north - 1e-4)


def raw_postgis(dsn: str, clients: int, n: int, rng) -> float:
    """Pin a point to its grid and insert a row, one transaction each: the floor under Report."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id uuid PRIMARY KEY, grid_code text, "
                     "location geometry(Point, 4326))")
    jobs = [(str(uuid.uuid4()), *point(rng)) for _ in range(n)]

    def work(conn, job):
        with conn.transaction():
            conn.execute(RAW_PIN_AND_STORE, {"id": job[0], "lon": job[1], "lat": job[2]})

    start = time.perf_counter()
    run_concurrently(clients, jobs, lambda: psycopg.connect(dsn, prepare_threshold=0), work)
    return n / (time.perf_counter() - start)


def pipeline(port: int, amqp_uri: str, officers: int, n: int, rng) -> dict:
    from shared.outbox import events_exchange
    subs = {}
    for key, rk in (("reported", "incidents.incident.reported"), ("task", "dispatch.task.created"),
                    ("dispatched", "incidents.incident.dispatched")):
        field = "report_id" if key == "reported" else "incident_id"
        subs[key] = Subscriber(amqp_uri, events_exchange(), rk, lambda m, f=field: json.loads(m.body)["data"][f])
        subs[key].start()
        subs[key].ready.wait(10)
    token = mint_token("bench-officer", "officer", [PLAN.city_code])
    md = [("authorization", f"Bearer {token}")]
    sent: dict[str, float] = {}
    incident_of: dict[str, str] = {}
    rpc_ms: list[float] = []
    lock = threading.Lock()
    jobs = []
    for _ in range(n):
        lon, lat = point(rng)
        req = pb.ReportRequest(report_id=str(uuid.uuid4()), category_code=rng.choice(CATEGORIES), title="bench",
                               location=pb.Location(lon=lon, lat=lat, accuracy_m=10))
        req.occurred_at.GetCurrentTime()
        jobs.append(req)
    channels = [grpc.insecure_channel(f"127.0.0.1:{port}") for _ in range(min(officers, 50))]
    counter = iter(range(officers))

    def make_client():  # officers share a few HTTP/2 connections, as phones behind one gateway would
        with lock:
            i = next(counter)
        return incidents_pb2_grpc.IncidentServiceStub(channels[i % len(channels)])

    def report(stub, req):
        t0 = time.perf_counter()
        sent[req.report_id] = t0
        out = stub.Report(req, metadata=md, timeout=120)
        rpc_ms.append((time.perf_counter() - t0) * 1000)
        incident_of[req.report_id] = out.incident.id

    start = time.perf_counter()
    run_concurrently(officers, jobs, make_client, report)
    ids = {r: incident_of[r] for r in sent}
    complete = subs["dispatched"].wait_for([ids[r] for r in sent], 300)
    for s in subs.values():
        s.stop.set()
    for c in channels:
        c.close()
    arrived = subs["dispatched"].arrived
    done = [r for r in sent if ids[r] in arrived]
    elapsed = max(arrived[ids[r]] for r in done) - start if done else float("inf")

    def lat(key, by_incident):
        a = subs[key].arrived
        return [(a[ids[r] if by_incident else r] - sent[r]) * 1000 for r in sent
                if (ids[r] if by_incident else r) in a]
    return {"rate": len(done) / elapsed, "n": n, "done": len(done), "complete": complete,
            "rpc": percentiles(rpc_ms), "reported": percentiles(lat("reported", False)),
            "task": percentiles(lat("task", True)), "dispatched": percentiles(lat("dispatched", True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--officers", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--reports-per-officer", type=int, default=3)
    parser.add_argument("--min-reports", type=int, default=200)
    args = parser.parse_args()

    url = os.environ.get("GRIDBUS_BENCH_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/gridbus_bench_pipeline")
    os.environ["GRIDBUS_DATABASE_URL"] = url
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    from services.dispatch import operations as dispatch_ops
    from services.dispatch.cli import DEFAULT_CONFIG
    from services.grid import operations as grid_ops
    from services.incidents import operations as incident_ops
    from services.incidents.cli import DEFAULT_CATEGORIES
    from services.registry import migrate
    from shared.config import settings
    s = settings()
    fresh_database(url)
    migrate(url)
    system = Principal("bench", SERVICE, ())
    grid_ops.import_units(system, build(PLAN))
    with open(DEFAULT_CATEGORIES, encoding="utf-8") as f:
        incident_ops.load_categories(system, yaml.safe_load(f))
    with open(DEFAULT_CONFIG, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    for d in config["departments"]:
        d["serves"] = [PLAN.city_code]  # the bench city, not the demo's
    config["rules"] = [r for r in config["rules"] if not r.get("grid")]
    dispatch_ops.load_config(system, config)

    port = 50000 + os.getpid() % 10000
    log_dir = ROOT / ".run" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    sup = Supervisor({**os.environ, "GRIDBUS_INCIDENTS_GRPC_PORT": str(port)}, log_dir)
    services.start(sup, ["incidents", "dispatch"])
    rng = random.Random(11)
    rows = []
    try:
        wait_until(lambda: check_grpc(f"127.0.0.1:{port}", timeout=1))
        wait_until(lambda: check_nameko(s.amqp_uri, "incidents", timeout=2))
        wait_until(lambda: check_nameko(s.amqp_uri, "dispatch", timeout=2))
        for officers in args.officers:
            n = max(args.min_reports, officers * args.reports_per_officer)
            broker = raw_broker(s.amqp_uri, min(officers, 100), n)["rate"]
            postgis = raw_postgis(dsn, min(officers, 20), n, rng)
            rows.append((officers, broker, postgis, pipeline(port, s.amqp_uri, officers, n, rng)))
    finally:
        sup.stop()

    fmt = lambda t: "/".join(f"{x:.0f}" for x in t)  # noqa: E731
    print(f"\nWhole path on {PLAN.grid_count} grids, {os.cpu_count()} cores; latencies from Report sent, ms p50/p95/p99")
    head = (f"{'officers':>8} {'reports':>7} | {'raw broker/s':>12} {'raw PostGIS/s':>13} | {'dispatched/s':>12} "
            f"{'vs broker':>9} {'vs PostGIS':>10} | {'Report RPC':>14} {'reported event':>15} {'task created':>15} "
            f"{'dispatched':>15}")
    print(head)
    print("-" * len(head))
    for officers, broker, postgis, p in rows:
        print(f"{officers:>8} {p['n']:>7} | {broker:>12,.0f} {postgis:>13,.0f} | {p['rate']:>12,.1f} "
              f"{p['rate'] / broker:>9.3f} {p['rate'] / postgis:>10.3f} | {fmt(p['rpc']):>14} {fmt(p['reported']):>15} "
              f"{fmt(p['task']):>15} {fmt(p['dispatched']):>15}"
              + ("" if p["complete"] else f"  (only {p['done']} dispatched in time)"))


if __name__ == "__main__":
    main()
