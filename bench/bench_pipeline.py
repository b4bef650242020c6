"""The whole path, officer to department: Report over gRPC -> pinned to a grid by PostGIS ->
stored -> `incidents.incident.reported` -> dispatch routes it (`dispatch.task.created`) ->
incidents moves it (`incidents.incident.dispatched`), at 1, 10, 100 and 1,000 simulated
officers. Prints throughput and p50/p95/p99 to each milestone, beside the raw broker
(kombu, persistent messages, publisher confirms pipelined, publish -> consume with acks) and raw
PostGIS (pin + insert over psycopg) rates measured in the same run; and the outbox's lag from
commit to a subscriber when idle. Asserts nothing about speed.

It runs in a RabbitMQ vhost of its own, made for the run and deleted after it, and measures only
once every event consumer of the services it started is consuming. Before, it shared the
default vhost: the durable handler queues kept what earlier runs left in them (`make bench` runs
bench_incidents first, whose thousands of reports wait in dispatch's queue for a dispatch that
is not running), so the first row's events queued behind them: the 39 s p50 of its first row."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Callable

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
from shared import tls  # noqa: E402
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


def private_vhost(amqp_uri: str) -> tuple[str, Callable[[], None]]:
    """A fresh vhost for this run (nothing left over from other runs in its queues), its URI and
    how to delete it."""
    parts = urllib.parse.urlparse(amqp_uri)
    vhost = f"gridbus-bench-pipeline-{os.getpid()}"
    ctl = lambda *a: subprocess.run(["rabbitmqctl", "-q", *a], check=True, capture_output=True, timeout=60)  # noqa: E731
    ctl("add_vhost", vhost)
    ctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
    return parts._replace(path="/" + urllib.parse.quote(vhost, safe="")).geturl(), lambda: ctl("delete_vhost", vhost)


def handler_queues(service_names: list[str]) -> list[str]:
    """The queue of every event handler (`shared.events.on_event`) of these services."""
    from services import registry
    from shared.events import EventConsumer
    queues = []
    for name in service_names:
        module = importlib.import_module(registry.BY_NAME[name].nameko)
        for cls in vars(module).values():
            if isinstance(cls, type) and getattr(cls, "name", None) == name:
                for attr, member in vars(cls).items():
                    if any(isinstance(e, EventConsumer) for e in getattr(member, "nameko_entrypoints", ())):
                        queues.append(f"gridbus.{name}.{attr}")
    return queues


def consuming(amqp_uri: str, queues: list[str]) -> Callable[[], None]:
    """A check for wait_until: every queue exists and has a consumer."""
    import kombu

    def check() -> None:
        with kombu.Connection(amqp_uri) as conn:
            for q in queues:
                _, _, consumers = conn.default_channel.queue_declare(q, passive=True)
                if not consumers:
                    raise RuntimeError(f"{q} has no consumer yet")
    return check


def raw_broker_pipelined(amqp_uri: str, n: int, window: int = 1000) -> dict:
    """Persistent messages published with confirms pipelined (many in flight, waited for
    together) and consumed with acks: what the broker gives the relays at best."""
    import kombu

    from bench.bench_incidents import Subscriber
    from shared.publisher import ConfirmedPublisher
    exchange = kombu.Exchange(f"bench.raw.{uuid.uuid4().hex[:6]}", type="topic", durable=False, auto_delete=True)
    sub = Subscriber(amqp_uri, exchange, "#", lambda m: m.properties["message_id"])
    with kombu.Connection(amqp_uri) as conn:
        exchange(conn.default_channel).declare()
    sub.start()
    sub.ready.wait(10)
    payload = os.urandom(700).hex()  # about the size of a reported event
    keys = [str(i) for i in range(n)]
    start = time.perf_counter()
    with ConfirmedPublisher(amqp_uri, window=window) as publisher:
        for key in keys:
            publisher.send(lambda producer, key=key: producer.publish(
                {"data": payload}, exchange=exchange, routing_key="bench", delivery_mode=2, message_id=key))
        publisher.wait_confirms()
    sub.wait_for(keys, 60)
    elapsed = max(sub.arrived.values()) - start
    sub.stop.set()
    return {"rate": len(sub.arrived) / elapsed}


def outbox_lag(amqp_uri: str, n: int, pause: float = 0.05) -> tuple[float, float, float]:
    """Commit to arrival at a subscriber, ms p50/p95/p99, for events committed one at a time on
    an idle system (incidents' outbox; its relay runs in the incidents nameko process)."""
    from bench.bench_incidents import Subscriber
    from shared.db import session_scope
    from shared.outbox import events_exchange, record_event
    sub = Subscriber(amqp_uri, events_exchange(), "incidents.bench.lag", lambda m: json.loads(m.body)["subject"])
    sub.start()
    sub.ready.wait(10)
    committed = {}
    for i in range(n):
        with session_scope() as s:
            record_event(s, "incidents", "incidents.bench.lag", f"lag/{i}", {"i": i})
        committed[f"lag/{i}"] = time.perf_counter()
        time.sleep(pause)  # idle between events: each is alone in its batch
    sub.wait_for(list(committed), 30)
    sub.stop.set()
    return percentiles([(sub.arrived[k] - t) * 1000 for k, t in committed.items() if k in sub.arrived])


def cpu_seconds(sup: Supervisor) -> dict[str, float]:
    """CPU time (user + system) each supervised process has used so far, from /proc: on a shared
    machine what a report costs in CPU is steadier than how long it waits for one."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for p in sup.processes:
        try:
            fields = Path(f"/proc/{p.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[p.name] = (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            out[p.name] = float("nan")
    return out


class Profiles:
    """py-spy (a local tool, not a dependency: `pip install py-spy`) sampling every supervised
    process, idle threads included, while one row runs; collapsed stacks to DIR/<process>.txt."""

    def __init__(self, sup: Supervisor, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.spies = [subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--idle", "--nonblocking", "-r", "100",
                                        "--format", "raw", "-o", str(out / f"{p.name}.txt"), "--pid", str(p.popen.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for p in sup.processes]
        time.sleep(1)  # py-spy attaches

    def stop(self) -> None:
        for spy in self.spies:
            spy.send_signal(signal.SIGINT)
        for spy in self.spies:
            spy.wait(60)


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
    channels = [tls.channel(f"127.0.0.1:{port}") for _ in range(min(officers, 50))]
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
    parser.add_argument("--lag-events", type=int, default=200)
    parser.add_argument("--profile", metavar="DIR", help="sample every process with py-spy during each row")
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

    with socket.socket() as probe:  # a free port: a fixed one may be another run's
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_dir = ROOT / ".run" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    amqp_uri, drop_vhost = private_vhost(s.amqp_uri)
    sup = Supervisor({**os.environ, "GRIDBUS_INCIDENTS_GRPC_PORT": str(port), "GRIDBUS_AMQP_URI": amqp_uri}, log_dir)
    started = services.start(sup, ["incidents", "dispatch"])
    rng = random.Random(11)
    rows = []
    try:
        wait_until(lambda: check_grpc(f"127.0.0.1:{port}", timeout=1))
        for service in started:
            wait_until(lambda service=service: check_nameko(amqp_uri, service, timeout=2))
        wait_until(consuming(amqp_uri, handler_queues(started)))
        lag = outbox_lag(amqp_uri, args.lag_events)
        for officers in args.officers:
            n = max(args.min_reports, officers * args.reports_per_officer)
            broker = raw_broker(amqp_uri, min(officers, 100), n)["rate"]
            pipelined = raw_broker_pipelined(amqp_uri, max(n, 2000))["rate"]
            postgis = raw_postgis(dsn, min(officers, 20), n, rng)
            spies = Profiles(sup, Path(args.profile) / f"officers-{officers}") if args.profile else None
            cpu_before = cpu_seconds(sup)
            result = pipeline(port, amqp_uri, officers, n, rng)
            cpu_after = cpu_seconds(sup)
            result["cpu_ms"] = {k: (cpu_after[k] - cpu_before[k]) * 1000 / max(result["done"], 1) for k in cpu_after}
            rows.append((officers, broker, pipelined, postgis, result))
            if spies:
                spies.stop()
    finally:
        sup.stop()
        drop_vhost()

    fmt = lambda t: "/".join(f"{x:.0f}" for x in t)  # noqa: E731
    print(f"\nWhole path on {PLAN.grid_count} grids, {os.cpu_count()} cores; latencies from Report sent, ms p50/p95/p99")
    print("raw broker: persistent, publish -> consume; 'wait' waits for each confirm, 'pipelined' keeps "
          "up to 1,000 in flight. 'vs pipelined' is dispatched/s over the pipelined raw rate.")
    head = (f"{'officers':>8} {'reports':>7} | {'raw wait/s':>10} {'pipelined/s':>11} {'PostGIS/s':>9} | "
            f"{'dispatched/s':>12} {'vs pipelined':>12} {'vs PostGIS':>10} | {'Report RPC':>14} "
            f"{'reported event':>15} {'task created':>15} {'dispatched':>15}")
    print(head)
    print("-" * len(head))
    for officers, broker, pipelined, postgis, p in rows:
        print(f"{officers:>8} {p['n']:>7} | {broker:>10,.0f} {pipelined:>11,.0f} {postgis:>9,.0f} | "
              f"{p['rate']:>12,.1f} {p['rate'] / pipelined:>12.3f} {p['rate'] / postgis:>10.3f} | "
              f"{fmt(p['rpc']):>14} {fmt(p['reported']):>15} {fmt(p['task']):>15} {fmt(p['dispatched']):>15}"
              + ("" if p["complete"] else f"  (only {p['done']} dispatched in time)"))
    print("\nCPU ms per dispatched report, by process: " + "; ".join(
        f"{officers} officer(s): " + ", ".join(f"{k} {v:.1f}" for k, v in p["cpu_ms"].items() if v == v and v > 0.05)
        for officers, _, _, _, p in rows))
    print(f"load average (1/5/15 min) at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"\noutbox lag, commit -> subscriber, idle ({args.lag_events} events one at a time), "
          f"ms p50/p95/p99: {'/'.join(f'{x:.1f}' for x in lag)}")


if __name__ == "__main__":
    main()
