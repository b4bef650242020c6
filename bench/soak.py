"""`make soak`: a bounded soak. Officers report at a fixed rate for a fixed time (default 10
minutes at 20 reports/s) through the whole running system; every interval it prints the
latency from Report to the reported event at a subscriber, the outbox backlog, and the memory
(RSS) of every process, so a leak or a growing queue shows as a trend. Not run in CI."""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import grpc
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.bench_incidents import CATEGORIES, PLAN, Subscriber  # noqa: E402
from demo import services  # noqa: E402
from demo.city import build  # noqa: E402
from demo.run import fresh_database  # noqa: E402
from demo.supervisor import Supervisor  # noqa: E402
from gridbus.incidents.v1 import incidents_pb2 as pb, incidents_pb2_grpc  # noqa: E402
from shared import tls  # noqa: E402
from shared.auth import SERVICE, Principal, mint_token  # noqa: E402
from shared.health import check_grpc, check_nameko, wait_until  # noqa: E402


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=20, help="reports per second")
    parser.add_argument("--interval", type=float, default=30, help="seconds between samples")
    args = parser.parse_args()

    url = os.environ.get("GRIDBUS_SOAK_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/gridbus_soak")
    os.environ["GRIDBUS_DATABASE_URL"] = url
    from services.dispatch import operations as dispatch_ops
    from services.dispatch.cli import DEFAULT_CONFIG as DISPATCH_CONFIG
    from services.grid import operations as grid_ops
    from services.incidents import operations as incident_ops
    from services.incidents.cli import DEFAULT_CATEGORIES
    from services.registry import migrate, port
    from shared.config import settings
    from shared.db import session_scope
    from shared.outbox import events_exchange
    from sqlalchemy import text
    s = settings()
    incidents_port = port("incidents")
    fresh_database(url)
    migrate(url)
    system = Principal("soak", SERVICE, ())
    grid_ops.import_units(system, build(PLAN))
    with open(DEFAULT_CATEGORIES, encoding="utf-8") as f:
        incident_ops.load_categories(system, yaml.safe_load(f))
    with open(DISPATCH_CONFIG, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    for d in config["departments"]:
        d["serves"] = [PLAN.city_code]  # the soak city, not the demo's
    config["rules"] = [r for r in config["rules"] if not r.get("grid")]
    dispatch_ops.load_config(system, config)

    log_dir = ROOT / ".run" / "soak-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    sup = Supervisor({**os.environ}, log_dir)
    started = services.start(sup, ["grid", "incidents", "dispatch", "credit"])
    threading.Thread(target=sup.watch, daemon=True).start()
    sub = Subscriber(s.amqp_uri, events_exchange(), "incidents.incident.reported",
                     lambda m: json.loads(m.body)["data"]["report_id"])
    sub.start()
    try:
        wait_until(lambda: check_grpc(f"127.0.0.1:{incidents_port}", timeout=1))
        wait_until(lambda: check_nameko(s.amqp_uri, "incidents", timeout=2))
        sub.ready.wait(10)
        print(f"soak: {', '.join(started)}; {args.rate:g} reports/s for {args.minutes:g} min; "
              f"sample every {args.interval:g} s")
        stub = incidents_pb2_grpc.IncidentServiceStub(tls.channel(f"127.0.0.1:{incidents_port}"))
        md = [("authorization", f"Bearer {mint_token('soak-officer', 'officer', [PLAN.city_code])}")]
        rng = random.Random(3)
        sent: dict[str, float] = {}
        errors = 0
        names = [p.name for p in sup.processes]
        print(f"{'t (s)':>6} {'sent':>7} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'backlog':>7}  "
              + " ".join(f"{n[:14]:>14}" for n in names) + "  (RSS MB)")
        start = time.monotonic()
        end = start + args.minutes * 60
        next_sample = start + args.interval
        n = 0
        window_start_keys: list[str] = []
        while time.monotonic() < end:
            due = start + n / args.rate
            time.sleep(max(0.0, due - time.monotonic()))
            req = pb.ReportRequest(report_id=str(uuid.uuid4()), category_code=rng.choice(CATEGORIES), title="soak",
                                   location=pb.Location(lon=rng.uniform(PLAN.west + 1e-4, PLAN.east - 1e-4),
                                                        lat=rng.uniform(PLAN.south + 1e-4, PLAN.north - 1e-4),
                                                        accuracy_m=10))
            req.occurred_at.GetCurrentTime()
            sent[req.report_id] = time.perf_counter()
            window_start_keys.append(req.report_id)
            try:
                stub.Report(req, metadata=md, timeout=30)
            except grpc.RpcError:
                errors += 1
            n += 1
            if time.monotonic() >= next_sample:
                next_sample += args.interval
                lat = [(sub.arrived[k] - sent[k]) * 1000 for k in window_start_keys if k in sub.arrived]
                window_start_keys = [k for k in window_start_keys if k not in sub.arrived]
                with session_scope() as session:
                    backlog = session.execute(text("SELECT count(*) FROM incidents.outbox WHERE published_at IS NULL")).scalar()
                q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [float("nan")] * 99
                print(f"{time.monotonic() - start:>6.0f} {n:>7} {errors:>6} {q[49]:>7.1f} {q[98]:>7.1f} {backlog:>7}  "
                      + " ".join(f"{rss_mb(p.popen.pid):>14.0f}" for p in sup.processes), flush=True)
        sub.wait_for(list(sent), 30)
        missing = [k for k in sent if k not in sub.arrived]
        restarts = {p.name: p.restarts for p in sup.processes if p.restarts}
        print(f"done: {n} reports, {errors} errors, {len(missing)} events missing, restarts: {restarts or 'none'}")
    finally:
        sub.stop.set()
        sup.stop()


if __name__ == "__main__":
    main()
