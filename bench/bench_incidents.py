"""Reports per second and the latency from `Report` to the `incidents.incident.reported` event
reaching a plain kombu subscriber, at 1, 10 and 100 concurrent clients, beside the raw speed
of the broker (kombu, persistent messages, publisher confirms, publish to consume) measured in
the same run. Prints figures; asserts nothing about speed."""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kombu
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from demo.city import CityPlan, build  # noqa: E402
from demo.run import fresh_database  # noqa: E402
from demo.supervisor import Supervisor  # noqa: E402
from gridbus.incidents.v1 import incidents_pb2 as pb, incidents_pb2_grpc  # noqa: E402
from shared import tls  # noqa: E402
from shared.auth import SERVICE, Principal, mint_token  # noqa: E402
from shared.health import check_grpc, check_nameko, wait_until  # noqa: E402

PLAN = CityPlan(city_code="440300", name="Bench City", west=121.0, south=30.0, east=122.0, north=31.0,
                districts=4, streets=4, communities=4, grids_x=5, grids_y=5)
CATEGORIES = ["0102", "0104", "0201", "0302", "0501", "0503", "0505", "0602"]


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49], q[94], q[98]


class Subscriber(threading.Thread):
    """Records when each awaited key arrives, on its own connection and queue."""

    def __init__(self, amqp_uri: str, exchange: kombu.Exchange, routing_key: str, key_of):
        super().__init__(daemon=True)
        self.amqp_uri, self.exchange, self.routing_key, self.key_of = amqp_uri, exchange, routing_key, key_of
        self.arrived: dict[str, float] = {}
        self.ready, self.stop = threading.Event(), threading.Event()

    def run(self) -> None:
        with kombu.Connection(self.amqp_uri) as conn:
            queue = kombu.Queue(f"bench-{uuid.uuid4().hex[:8]}", self.exchange, routing_key=self.routing_key,
                                exclusive=True, auto_delete=True)

            def on_message(message):
                self.arrived[self.key_of(message)] = time.perf_counter()
                message.ack()

            with kombu.Consumer(conn, queues=[queue], on_message=on_message, prefetch_count=500):
                self.ready.set()
                while not self.stop.is_set():
                    try:
                        conn.drain_events(timeout=0.5)
                    except TimeoutError:
                        pass

    def wait_for(self, keys, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(k in self.arrived for k in keys):
                return True
            time.sleep(0.02)
        return False


def run_concurrently(clients: int, jobs: list, make_client, do) -> None:
    share = [jobs[i::clients] for i in range(clients)]

    def work(mine):
        client = make_client()
        for job in mine:
            do(client, job)

    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(work, mine) for mine in share]:
            f.result()


def raw_broker(amqp_uri: str, clients: int, n: int) -> dict:
    """Persistent messages with publisher confirms, publish to consume: the floor under Report."""
    exchange = kombu.Exchange(f"bench.raw.{uuid.uuid4().hex[:6]}", type="topic", durable=False, auto_delete=True)
    sub = Subscriber(amqp_uri, exchange, "#", lambda m: m.properties["message_id"])
    with kombu.Connection(amqp_uri) as conn:
        exchange(conn.default_channel).declare()
    sub.start()
    sub.ready.wait(10)
    sent: dict[str, float] = {}
    payload = os.urandom(700).hex()  # about the size of a reported event

    def make_client():
        conn = kombu.Connection(amqp_uri, transport_options={"confirm_publish": True})
        return conn.Producer(serializer="json")

    def publish(producer, key):
        sent[key] = time.perf_counter()
        producer.publish({"data": payload}, exchange=exchange, routing_key="bench", delivery_mode=2, message_id=key)

    keys = [str(i) for i in range(n)]
    start = time.perf_counter()
    run_concurrently(clients, keys, make_client, publish)
    sub.wait_for(keys, 60)
    elapsed = max(sub.arrived.values()) - start
    sub.stop.set()
    latencies = [(sub.arrived[k] - sent[k]) * 1000 for k in keys if k in sub.arrived]
    return {"rate": len(latencies) / elapsed, "lat": percentiles(latencies), "n": len(latencies)}


def reports(port: int, amqp_uri: str, clients: int, n: int, token: str, rng: random.Random) -> dict:
    from shared.outbox import events_exchange
    sub = Subscriber(amqp_uri, events_exchange(), "incidents.incident.reported",
                     lambda m: __import__("json").loads(m.body)["data"]["report_id"])
    sub.start()
    sub.ready.wait(10)
    md = [("authorization", f"Bearer {token}")]
    sent: dict[str, float] = {}
    rpc_ms: list[float] = []
    jobs = []
    for _ in range(n):
        req = pb.ReportRequest(report_id=str(uuid.uuid4()), category_code=rng.choice(CATEGORIES),
                               title="bench report", description="generated by bench_incidents",
                               location=pb.Location(lon=rng.uniform(PLAN.west + 1e-4, PLAN.east - 1e-4),
                                                    lat=rng.uniform(PLAN.south + 1e-4, PLAN.north - 1e-4),
                                                    accuracy_m=10))
        req.occurred_at.GetCurrentTime()
        jobs.append(req)

    def make_client():
        return incidents_pb2_grpc.IncidentServiceStub(tls.channel(f"127.0.0.1:{port}"))

    def report(stub, req):
        t0 = time.perf_counter()
        sent[req.report_id] = t0
        stub.Report(req, metadata=md, timeout=60)
        rpc_ms.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    run_concurrently(clients, jobs, make_client, report)
    keys = [r.report_id for r in jobs]
    complete = sub.wait_for(keys, 120)
    elapsed = max(sub.arrived.values()) - start
    sub.stop.set()
    e2e = [(sub.arrived[k] - sent[k]) * 1000 for k in keys if k in sub.arrived]
    return {"rate": len(e2e) / elapsed, "lat": percentiles(e2e), "rpc": percentiles(rpc_ms), "n": len(e2e),
            "complete": complete}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--reports-per-client", type=int, default=60)
    parser.add_argument("--min-reports", type=int, default=300)
    args = parser.parse_args()

    url = os.environ.get("GRIDBUS_BENCH_DATABASE_URL",
                         "postgresql+psycopg://root@127.0.0.1:5432/gridbus_bench_incidents")
    os.environ["GRIDBUS_DATABASE_URL"] = url
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

    port = 50000 + os.getpid() % 10000
    log_dir = ROOT / ".run" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    sup = Supervisor({**os.environ, "GRIDBUS_INCIDENTS_GRPC_PORT": str(port)}, log_dir)
    sup.add("incidents-grpc", sys.executable, "-m", "services.incidents.grpc_server")
    sup.add("incidents-nameko", sys.executable, "-m", "services.nameko_run", "services.incidents.service")
    try:
        wait_until(lambda: check_grpc(f"127.0.0.1:{port}", timeout=1))
        wait_until(lambda: check_nameko(s.amqp_uri, "incidents", timeout=2))
        token = mint_token("bench-officer", "officer", [PLAN.city_code])
        rng = random.Random(7)
        rows = []
        for c in args.clients:
            n = max(args.min_reports, c * args.reports_per_client)
            raw = raw_broker(s.amqp_uri, c, n)
            rep = reports(port, s.amqp_uri, c, n, token, rng)
            rows.append((c, n, raw, rep))
    finally:
        sup.stop()

    print(f"\nReport -> incidents.incident.reported at a subscriber; {PLAN.grid_count} grids, "
          f"{os.cpu_count()} cores. Latencies in ms (p50/p95/p99).")
    header = (f"{'clients':>7} {'n':>6} | {'raw broker/s':>12} {'raw p50/p95/p99':>20} | "
              f"{'reports/s':>9} {'vs raw':>6} {'event p50/p95/p99':>22} {'Report RPC p50/p95/p99':>24}")
    print(header)
    print("-" * len(header))
    for c, n, raw, rep in rows:
        fmt = lambda t: "/".join(f"{x:.0f}" if x >= 10 else f"{x:.1f}" for x in t)  # noqa: E731
        print(f"{c:>7} {n:>6} | {raw['rate']:>12,.0f} {fmt(raw['lat']):>20} | {rep['rate']:>9,.0f} "
              f"{rep['rate'] / raw['rate']:>6.2f} {fmt(rep['lat']):>22} {fmt(rep['rpc']):>24}"
              + ("" if rep["complete"] else f"  (only {rep['n']} events arrived)"))


if __name__ == "__main__":
    main()
