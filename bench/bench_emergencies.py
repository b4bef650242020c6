"""Emergencies: latency from an urgent Report over gRPC to the alert on the nearest officer's open
WatchAlerts stream (through incidents' outbox, the broker, the emergencies worker's KNN query,
its outbox and the gRPC server's feed), p50/p99, beside a raw RabbitMQ publish-to-consumer hop of
persistent messages measured in the same run. Prints figures; asserts nothing about speed."""
from __future__ import annotations

import argparse
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import kombu
from google.protobuf.timestamp_pb2 import Timestamp

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from demo import services  # noqa: E402
from demo.emergencies import read_stream  # noqa: E402
from demo.city import CityPlan, build  # noqa: E402
from demo.run import fresh_database  # noqa: E402
from demo.supervisor import Supervisor  # noqa: E402
from gridbus.emergencies.v1 import emergencies_pb2 as pb, emergencies_pb2_grpc  # noqa: E402
from gridbus.incidents.v1 import incidents_pb2 as ipb, incidents_pb2_grpc  # noqa: E402
from shared import tls  # noqa: E402
from shared.auth import SERVICE, Principal, mint_token  # noqa: E402
from shared.health import check_grpc, check_nameko, wait_until  # noqa: E402

AT = (120.03, 30.05)


def pct(samples: list[float], p: int) -> float:
    return statistics.quantiles(samples, n=100)[p - 1] if len(samples) > 1 else samples[0]


def raw_hop(amqp_uri: str, n: int) -> list[float]:
    """Publish (persistent, confirmed) -> a consumer on another connection receives it, one at a time."""
    got: queue.Queue = queue.Queue()
    name = f"bench-raw-{uuid.uuid4().hex[:6]}"
    with kombu.Connection(amqp_uri) as consumer_conn, kombu.Connection(
            amqp_uri, transport_options={"confirm_publish": True}) as producer_conn:
        q = kombu.Queue(name, exclusive=True, auto_delete=True)
        with kombu.Consumer(consumer_conn, queues=[q], on_message=lambda m: (got.put(time.perf_counter()), m.ack())):
            producer = producer_conn.Producer()
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                producer.publish(b"x", routing_key=name, delivery_mode=2)
                while got.empty():
                    consumer_conn.drain_events(timeout=5)
                samples.append((got.get() - t0) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=50)
    args = parser.parse_args()

    vhost = f"gridbus-bench-emergencies-{os.getpid()}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True)
    os.environ["GRIDBUS_AMQP_URI"] = amqp_uri = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    admin_url = os.environ.get("GRIDBUS_BENCH_DATABASE_URL",
                               "postgresql+psycopg://root@127.0.0.1:5432/gridbus_bench_emergencies")
    owner_url, runtime_url = fresh_database(admin_url)
    os.environ["GRIDBUS_DATABASE_URL"], os.environ["GRIDBUS_MIGRATION_DATABASE_URL"] = runtime_url, owner_url
    from services import registry
    from services.grid import operations as grid_ops
    from services.incidents import operations as incident_ops
    from services.incidents.cli import DEFAULT_CATEGORIES
    import yaml
    registry.migrate(owner_url, runtime_url)
    admin = Principal("bench-admin", "admin", ("330100",))
    grid_ops.import_units(Principal("bench", SERVICE, ()), build(CityPlan()))
    with open(DEFAULT_CATEGORIES, encoding="utf-8") as f:
        incident_ops.load_categories(Principal("bench", SERVICE, ()), yaml.safe_load(f))
    log_dir = ROOT / ".run" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    base = 52000 + os.getpid() % 5000
    sup = Supervisor({**os.environ, "GRIDBUS_GRID_GRPC_PORT": str(base), "GRIDBUS_INCIDENTS_GRPC_PORT": str(base + 1),
                      "GRIDBUS_EMERGENCIES_GRPC_PORT": str(base + 2), "GRIDBUS_METRICS_PORT": "0"}, log_dir)
    services.start(sup, ["grid", "incidents", "emergencies"])
    try:
        for name in ("grid", "incidents", "emergencies"):
            wait_until(lambda name=name: check_nameko(amqp_uri, name, timeout=2), timeout=90)
        for port in (base + 1, base + 2):
            wait_until(lambda port=port: check_grpc(f"127.0.0.1:{port}", timeout=1), timeout=90)
        member = grid_ops.create_member(admin, "Bench officer", "13900009999", "officer")
        grid = grid_ops.leaf_grids().current.locate(*AT)
        grid_ops.assign_member(admin, member.id, grid.code, True)
        phone = Principal(member.id, "officer", (grid.code,))
        grid_ops.update_member(phone, member.id, {"on_duty": True})
        md = [("authorization", f"Bearer {mint_token(member.id, 'officer', [grid.code])}")]
        alerts = emergencies_pb2_grpc.EmergencyServiceStub(tls.channel(f"127.0.0.1:{base + 2}"))
        incidents = incidents_pb2_grpc.IncidentServiceStub(tls.channel(f"127.0.0.1:{base + 1}"))
        stream = alerts.WatchAlerts(pb.WatchAlertsRequest(), metadata=md)
        stream.initial_metadata()
        notices: queue.Queue = queue.Queue()
        threading.Thread(target=read_stream, args=(stream, lambda n: notices.put((time.perf_counter(), n))),
                         daemon=True).start()

        samples = []
        for i in range(args.reports):
            # Each round the officer is free again at the spot (a fresh position; not busy: nobody accepts).
            grid_ops.report_position(phone, member.id, AT[0] + 1e-4, AT[1])
            ts = Timestamp()
            ts.FromDatetime(datetime.now(timezone.utc))
            t0 = time.perf_counter()
            incident = incidents.Report(ipb.ReportRequest(
                report_id=str(uuid.uuid4()), category_code="0401", title=f"Road collapse {i}",
                location=ipb.Location(lon=AT[0], lat=AT[1], accuracy_m=5), occurred_at=ts), metadata=md).incident
            while True:
                at, notice = notices.get(timeout=60)
                if notice.incident_id == incident.id and notice.type == "emergencies.alert.sent":
                    samples.append((at - t0) * 1000)
                    break
        raw = raw_hop(amqp_uri, args.reports)
    finally:
        sup.stop()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)

    print(f"\nEmergencies: {args.reports} urgent reports, {os.cpu_count()} cores")
    print(f"{'Report -> alert on the officer stream':<44} p50 {pct(samples, 50):7.1f} ms  p99 {pct(samples, 99):7.1f} ms")
    print(f"{'raw RabbitMQ publish -> consumer (1 hop)':<44} p50 {pct(raw, 50):7.1f} ms  p99 {pct(raw, 99):7.1f} ms")
    print(f"{'  ratio (p50)':<44} {pct(samples, 50) / pct(raw, 50):7.1f}x  (the path crosses the broker twice)")


if __name__ == "__main__":
    main()
