"""`make run`: the gridbus services with a demo city.

Starts every service's processes under a supervisor that restarts a crashed one, imports a
demo city, registers officers and dispatchers through the gRPC API, lets the officers patrol,
then runs cases end to end (demo/cases.py): reports, dispatch with deadlines and escalation,
departments handling, verification, closure, and the credit registry. A live view prints
incidents per state, escalations and events per second; the evaluation table ends it.
An urgent incident alerts the nearest officer, who accepts (demo/emergencies.py); sensors send
an alarm storm that becomes suspected cases (demo/sensors.py). Ctrl-C stops
everything; --keep-running leaves the services up afterwards."""
from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import threading
import time
from collections import Counter

import grpc
import kombu
import psycopg
from sqlalchemy import make_url

from demo import emergencies as demo_emergencies
from demo import sensors as demo_sensors
from demo import services
from demo.cases import LiveView, run_cases
from demo.city import CityPlan, build, grid_cells
from demo.supervisor import ROOT, Supervisor
from gridbus.grid.v1 import grid_pb2 as pb
from gridbus.grid.v1 import grid_pb2_grpc
from services import registry
from services.grid import signin
from shared import tls
from shared.auth import SERVICE, Principal, mint_token
from shared.config import settings
from shared.health import check_grpc, wait_until

PLAN = CityPlan(city_code="330100", name="Demo City", districts=3, streets=2, communities=2, grids_x=3, grids_y=3)


# As in production (docs/security.md): migrations run as the owner, the services as a role
# that owns nothing. The local PostgreSQL trusts local connections, so they need no passwords.
OWNER_ROLE, RUNTIME_ROLE = "gridbus_owner", "gridbus_app"


def fresh_database(admin_url: str) -> tuple[str, str]:
    """Drops and makes the demo database, owned by OWNER_ROLE, with PostGIS (as the superuser
    of `admin_url`, which names the database); returns the owner's and the services' URLs."""
    url = make_url(admin_url)
    name = url.database

    def dsn(database: str) -> str:
        return url.set(drivername="postgresql", database=database).render_as_string(hide_password=False)
    with psycopg.connect(dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        for role in (OWNER_ROLE, RUNTIME_ROLE):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}")
    with psycopg.connect(dsn(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgis")
    return (url.set(username=OWNER_ROLE, password=None).render_as_string(hide_password=False),
            url.set(username=RUNTIME_ROLE, password=None).render_as_string(hide_password=False))


class EventPrinter(threading.Thread):
    """An outside subscriber: a plain kombu queue on the events exchange."""

    def __init__(self, amqp_uri: str, verbose: bool = False):
        super().__init__(daemon=True)
        self.verbose = verbose
        from shared.outbox import events_exchange
        self.amqp_uri, self.exchange = amqp_uri, events_exchange()
        self.counts: Counter = Counter()
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        with tls.amqp_connection(self.amqp_uri) as conn:
            queue = kombu.Queue("", self.exchange, routing_key="#", exclusive=True, auto_delete=True)

            def on_message(body, message):
                event = json.loads(body) if isinstance(body, (str, bytes)) else body
                self.counts[event["type"]] += 1
                data = event["data"]
                if self.verbose:
                    detail = {k: data[k] for k in ("name", "grid_code", "phone", "created", "status",
                                                   "department_code") if data.get(k) is not None}
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
    parser.add_argument("--reports", type=int, default=3, help="incidents each officer reports")
    parser.add_argument("--events", action="store_true", help="print every event the subscriber sees")
    parser.add_argument("--keep-running", action="store_true", help="leave the services up until Ctrl-C")
    parser.add_argument("--levels", action="store_true",
                        help="also federate this demo's events to a city and a province (three levels)")
    args = parser.parse_args(argv)
    if args.levels:
        os.environ["GRIDBUS_DEPLOYMENT"] = "county-demo"   # events' source: /gridbus/county-demo/<service>

    # A superuser of the local PostgreSQL (scripts/infra.sh's), to make the roles and the database.
    admin_url = f"postgresql+psycopg://{os.environ.get('PGUSER', 'root')}@127.0.0.1:5432/gridbus_demo"
    port = registry.port("grid")
    print(f"== fresh demo database {make_url(admin_url).database}, owned by {OWNER_ROLE}; migrations as "
          f"{OWNER_ROLE}, the services as {RUNTIME_ROLE}")
    owner_url, runtime_url = fresh_database(admin_url)
    os.environ.update(GRIDBUS_DATABASE_URL=runtime_url, GRIDBUS_MIGRATION_DATABASE_URL=owner_url)
    registry.migrate()
    s = settings()

    log_dir = ROOT / ".run" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # Short manual-queue and escalation deadlines, so the demo shows escalation within seconds.
    env = {**os.environ, "GRIDBUS_DATABASE_URL": s.database_url, "GRIDBUS_DISPATCH_ASSIGN_MINUTES": "0.05",
           "GRIDBUS_DISPATCH_ESCALATION_MINUTES": "0.05"}
    sup = Supervisor(env, log_dir)
    print(f"== starting {', '.join(services.start(sup))} (logs in {log_dir})")
    from services.cli import main as gridbus
    gridbus(["incidents", "load-categories"])
    gridbus(["dispatch", "load"])
    gridbus(["credit", "load-authorities"])
    # Leave outdoor advertising without a rule, so the manual queue and escalation show.
    from services.dispatch import operations as dispatch_ops
    operator = DEMO_OPERATOR
    for rule in dispatch_ops.list_rules(operator):
        if rule.category_prefix == "02":
            dispatch_ops.deactivate_rule(operator, rule.id)
    threading.Thread(target=sup.watch, daemon=True).start()
    province = None
    if args.levels:
        from demo.levels import Province
        from shared.broker_users import LINK, env_name
        province = Province(s.amqp_uri, s.broker_management_url, sup.env[env_name(LINK)])
    printer = EventPrinter(s.amqp_uri, verbose=args.events)
    printer.start()
    printer.ready.wait(10)
    live = LiveView(printer)
    try:
        officers, districts, sign_ins = run_demo(port, args)
        print_console(s, sign_ins)
        live.start()
        run_cases(officers, districts, PLAN.city_code, args.reports)
        demo_emergencies.run(officers)
        demo_sensors.run(PLAN.city_code, districts[0], next(c for c in grid_cells(PLAN) if c[0].startswith(districts[0])))
        live.stop.set()
        print(live.snapshot())
        print("== evaluation, today, per department:")
        from services.dispatch.cli import format_evaluation
        from datetime import datetime, timedelta, timezone
        now = datetime.now(timezone.utc)
        rows = dispatch_ops.evaluation(operator, now - timedelta(days=1), now + timedelta(minutes=1))
        print("\n".join("   " + line for line in format_evaluation(rows, "department",
                                                                     dispatch_ops.formula()).splitlines()))
        rows = dispatch_ops.evaluation(operator, now - timedelta(days=1), now + timedelta(minutes=1), group_by="district")
        print("\n".join("   " + line for line in format_evaluation(rows, "district").splitlines()))
        if args.keep_running:
            print(f"== services running (gRPC grid on :{port}; the console on {console_address(s)}); "
                  f"officers keep patrolling and reporting. Ctrl-C stops them. Logs in {log_dir}")
            keep_patrolling(officers)
    except KeyboardInterrupt:
        pass
    finally:
        live.stop.set()
        time.sleep(1.0)  # let the last events arrive
        printer.stop.set()
        sup.stop()
        if province is not None:
            province.report()
        print("== events seen by the subscriber:")
        for kind, n in sorted(printer.counts.items()):
            print(f"  {kind:<32} {n}")
        print("== stopped")


def console_address(s) -> str:
    return f"http://{s.console_http_host}:{registry.port('console', registry.HTTP)}/"


def print_console(s, sign_ins: list[tuple[str, str, str, str]]) -> None:
    """The console's and the officer's app's addresses, once they answer, and who signs in there."""
    import urllib.request
    address = console_address(s)
    try:
        wait_until(lambda: urllib.request.urlopen(address + "healthz", timeout=1), 60)
    except Exception as exc:
        print(f"== the console did not answer on {address} ({exc}); see .run/logs/console-http.log")
        return
    for app, title, where in (("console", "the dispatch console", address),
                              ("officer", "the officer's app", address + "officer/")):
        print(f"== {title}: {where}  (sign in with a user name or phone and the password {DEMO_PASSWORD})")
        for kind, who, username, phone in sign_ins:
            if kind == app:
                print(f"   {who:<34} {username:<12} or {phone}")


def keep_patrolling(officers) -> None:
    """Until Ctrl-C: officers move and now and then report, so the console has something live."""
    from demo.cases import CATEGORIES, _report
    from gridbus.incidents.v1 import incidents_pb2_grpc
    grid_stub = grid_pb2_grpc.GridServiceStub(tls.channel(f"127.0.0.1:{registry.port('grid')}"))
    incidents = incidents_pb2_grpc.IncidentServiceStub(
        tls.channel(f"127.0.0.1:{registry.port('incidents')}"))
    rng = random.Random(23)
    for beat in itertools.count():
        for o, code, (w, so, e, n), me in officers:
            try:
                grid_stub.ReportPosition(pb.ReportPositionRequest(member_id=o.id, lon=rng.uniform(w, e),
                                                                  lat=rng.uniform(so, n)), metadata=me, timeout=5)
                if beat % 10 == 9 and rng.random() < 0.3:
                    incidents.Report(_report((w, so, e, n), rng, rng.choice(CATEGORIES)), metadata=me, timeout=5)
            except grpc.RpcError as exc:  # a service restarting: the next beat tries again
                print(f"   patrol: {exc.code().name}: {exc.details()}")
        time.sleep(3)


# Every demo member's password (a development database, made fresh by every run).
DEMO_PASSWORD = "gridbus-demo"
DEMO_OPERATOR = Principal("demo", SERVICE, ())
OFFICERS_PRINTED = 3


def run_demo(port: int, args) -> None:
    admin_token = mint_token("demo-admin", "admin", [PLAN.city_code])
    admin = [("authorization", f"Bearer {admin_token}")]
    channel = tls.channel(f"127.0.0.1:{port}")
    stub = grid_pb2_grpc.GridServiceStub(channel)
    wait_until(lambda: check_grpc(f"127.0.0.1:{port}", timeout=1))

    doc = build(PLAN)
    print(f"== importing {len(doc['features'])} units ({PLAN.grid_count} grids) of {PLAN.name}")
    r = stub.ImportUnits(pb.ImportUnitsRequest(feature_collection_geojson=json.dumps(doc).encode()), metadata=admin)
    print(f"   created {r.created}, updated {r.updated}, unchanged {r.unchanged}")

    cells = grid_cells(PLAN)
    rng = random.Random(7)
    districts = sorted({c[0][:6] for c in cells})
    print(f"== registering {len(districts)} dispatchers, a shift leader and {args.officers} officers")
    sign_ins = []
    for i, (name, unit) in enumerate([*((f"Dispatcher {i + 1}", d) for i, d in enumerate(districts)),
                                       ("Shift leader", PLAN.city_code)]):
        d = stub.CreateMember(pb.CreateMemberRequest(name=name, phone=f"1370000{i:04d}", role=pb.ROLE_DISPATCHER),
                              metadata=admin)
        stub.AssignMember(pb.AssignMemberRequest(member_id=d.id, grid_code=unit), metadata=admin)
        # What `gridbus grid set-password --member <id> --username ...` does.
        username = "leader" if unit == PLAN.city_code else f"dispatcher{i + 1}"
        signin.set_password(DEMO_OPERATOR, d.id, DEMO_PASSWORD, username)
        sign_ins.append(("console", f"{name} ({unit})", username, d.phone))
    officers = []
    for i in range(args.officers):
        code, w, s, e, n = cells[(i * len(cells)) // max(args.officers, 1) % len(cells)]
        o = stub.CreateMember(pb.CreateMemberRequest(name=f"Officer {i + 1}", phone=f"1380000{i:04d}",
                                                     role=pb.ROLE_OFFICER), metadata=admin)
        stub.AssignMember(pb.AssignMemberRequest(member_id=o.id, grid_code=code), metadata=admin)
        signin.set_password(DEMO_OPERATOR, o.id, DEMO_PASSWORD, f"officer{i + 1}")
        if i < OFFICERS_PRINTED:
            sign_ins.append(("officer", f"{o.name} ({code})", f"officer{i + 1}", o.phone))
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
    return officers, districts, sign_ins


if __name__ == "__main__":
    main()
