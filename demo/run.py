"""`make run`: the gridbus services with a demo city.

Starts every service's processes under a supervisor, imports a demo city, registers officers
and dispatchers through the gRPC API, and lets the officers patrol: they go on duty, report
their positions and pin points to grids, while a subscriber prints the events as they leave
through RabbitMQ. Ctrl-C stops everything; --keep-running leaves the services up afterwards."""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import kombu
import psycopg

from demo.city import CityPlan, build, grid_cells
from demo.supervisor import ROOT, Supervisor
from gridbus.grid.v1 import grid_pb2 as pb
from gridbus.grid.v1 import grid_pb2_grpc
from shared.auth import mint_token
from shared.config import settings
from shared.health import check_grpc, wait_until

PLAN = CityPlan(city_code="330100", name="Demo City", districts=3, streets=2, communities=2, grids_x=3, grids_y=3)


def fresh_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


class EventPrinter(threading.Thread):
    """An outside subscriber: a plain kombu queue on the events exchange."""

    def __init__(self, amqp_uri: str):
        super().__init__(daemon=True)
        from shared.outbox import events_exchange
        self.amqp_uri, self.exchange = amqp_uri, events_exchange()
        self.counts: Counter = Counter()
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        with kombu.Connection(self.amqp_uri) as conn:
            queue = kombu.Queue("", self.exchange, routing_key="#", exclusive=True, auto_delete=True)

            def on_message(body, message):
                event = json.loads(body) if isinstance(body, (str, bytes)) else body
                self.counts[event["type"]] += 1
                data = event["data"]
                detail = {k: data[k] for k in ("name", "grid_code", "phone", "created") if k in data}
                print(f"  event #{event['sequence']:>4} {event['type']:<30} {event['subject']:<48} {detail}")
                message.ack()

            with conn.Consumer(queue, callbacks=[on_message], accept=["application/cloudevents+json", "json"]):
                self.ready.set()
                while not self.stop.is_set():
                    try:
                        conn.drain_events(timeout=0.5)
                    except TimeoutError:
                        pass


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--officers", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5, help="patrol rounds")
    parser.add_argument("--keep-running", action="store_true", help="leave the services up until Ctrl-C")
    args = parser.parse_args(argv)

    os.environ.setdefault("GRIDBUS_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/gridbus_demo")
    s = settings()
    port = s.grid_grpc_port
    print(f"== fresh demo database {s.database_url.rsplit('/', 1)[1]}, migrations")
    fresh_database(s.database_url)
    from shared.migrations import upgrade
    upgrade(s.database_url)

    log_dir = ROOT / ".run" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GRIDBUS_DATABASE_URL": s.database_url}
    sup = Supervisor(env, log_dir)
    bin_dir = Path(sys.executable).parent
    sup.add("grid-nameko", str(bin_dir / "nameko"), "run", "services.grid.service", "--broker", s.amqp_uri)
    sup.add("grid-grpc", sys.executable, "-m", "services.grid.grpc_server")
    threading.Thread(target=sup.watch, daemon=True).start()
    printer = EventPrinter(s.amqp_uri)
    printer.start()
    printer.ready.wait(10)
    try:
        run_demo(port, args)
        if args.keep_running:
            print(f"== services running (gRPC grid on :{port}); Ctrl-C stops them. Logs in {log_dir}")
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        time.sleep(1.0)  # let the last events arrive
        printer.stop.set()
        sup.stop()
        print("== events seen by the subscriber:")
        for kind, n in sorted(printer.counts.items()):
            print(f"  {kind:<32} {n}")
        print("== stopped")


def run_demo(port: int, args) -> None:
    admin_token = mint_token("demo-admin", "admin", [PLAN.city_code])
    admin = [("authorization", f"Bearer {admin_token}")]
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = grid_pb2_grpc.GridServiceStub(channel)
    wait_until(lambda: check_grpc(f"127.0.0.1:{port}", timeout=1))

    doc = build(PLAN)
    print(f"== importing {len(doc['features'])} units ({PLAN.grid_count} grids) of {PLAN.name}")
    r = stub.ImportUnits(pb.ImportUnitsRequest(feature_collection_geojson=json.dumps(doc).encode()), metadata=admin)
    print(f"   created {r.created}, updated {r.updated}, unchanged {r.unchanged}")

    cells = grid_cells(PLAN)
    rng = random.Random(7)
    districts = sorted({c[0][:6] for c in cells})
    print(f"== registering {len(districts)} dispatchers and {args.officers} officers")
    for i, district in enumerate(districts):
        d = stub.CreateMember(pb.CreateMemberRequest(name=f"Dispatcher {i + 1}", phone=f"1370000{i:04d}",
                                                     role=pb.ROLE_DISPATCHER), metadata=admin)
        stub.AssignMember(pb.AssignMemberRequest(member_id=d.id, grid_code=district), metadata=admin)
    officers = []
    for i in range(args.officers):
        code, w, s, e, n = cells[(i * len(cells)) // max(args.officers, 1) % len(cells)]
        o = stub.CreateMember(pb.CreateMemberRequest(name=f"Officer {i + 1}", phone=f"1380000{i:04d}",
                                                     role=pb.ROLE_OFFICER), metadata=admin)
        stub.AssignMember(pb.AssignMemberRequest(member_id=o.id, grid_code=code), metadata=admin)
        me = [("authorization", f"Bearer {mint_token(o.id, 'officer', [code])}")]
        stub.UpdateMember(pb.UpdateMemberRequest(id=o.id, on_duty=True), metadata=me)
        officers.append((o, code, (w, s, e, n), me))

    print(f"== {args.rounds} patrol rounds: officers report positions and pin points to grids")
    for round_no in range(args.rounds):
        for o, code, (w, s, e, n), me in officers:
            # Mostly inside their grid, now and then a step over the border.
            lon = rng.uniform(w - (e - w) * 0.2, e + (e - w) * 0.2)
            lat = rng.uniform(s - (n - s) * 0.2, n + (n - s) * 0.2)
            where = stub.ReportPosition(pb.ReportPositionRequest(member_id=o.id, lon=lon, lat=lat), metadata=me)
            flag = "" if where.grid_code == code else f"  (outside own grid {code})"
            print(f"   round {round_no + 1}: {o.name:<10} at ({lon:.4f}, {lat:.4f}) in {where.grid_code or '-'}{flag}")
        try:
            stub.Locate(pb.LocateRequest(lon=0.0, lat=0.0), metadata=admin)
        except grpc.RpcError as exc:
            if round_no == 0:
                print(f"   a point outside the city: {exc.code().name}: {exc.details()}")
        time.sleep(0.3)

    district = districts[0]
    dispatcher = [("authorization", f"Bearer {mint_token('demo-dispatcher', 'dispatcher', [district])}")]
    on_duty = stub.ListMembers(pb.ListMembersRequest(grid_code=district, role=pb.ROLE_OFFICER, on_duty_only=True),
                               metadata=dispatcher)
    print(f"== dispatcher of {district} sees {len(on_duty.members)} officers on duty:")
    for m in on_duty.members:
        print(f"   {m.name:<10} {m.phone}  grid {m.assignments[0].grid_code}  "
              f"last at ({m.last_position.lon:.4f}, {m.last_position.lat:.4f})")
    try:
        stub.ListMembers(pb.ListMembersRequest(grid_code=districts[-1]), metadata=dispatcher)
    except grpc.RpcError as exc:
        print(f"   ...and not another district's: {exc.code().name}: {exc.details()}")
    channel.close()


if __name__ == "__main__":
    main()
