"""Break things on purpose during a stream of reports, on the real servers, and show nothing is
lost or repeated: every report a phone got an answer for is stored exactly once, and its event
reaches a durable subscriber (counted by id).

Phones behave as phones do: a report that fails or times out is sent again with the same
report id until it is answered."""
from __future__ import annotations

import subprocess
import threading
import time
import uuid
from dataclasses import dataclass

import grpc
import kombu
import psycopg
import pytest
import yaml
from sqlalchemy import text

from gridbus.grid.v1 import grid_pb2, grid_pb2_grpc
from gridbus.incidents.v1 import incidents_pb2_grpc
from services.dispatch import operations as dispatch_ops
from services.dispatch.cli import DEFAULT_CONFIG
from shared.db import dispose_engines, session_scope
from shared.events import declare_subscription
from tests.conftest import ADMIN_DSN, SYSTEM
from tests.incidents.conftest import GRIDS, inside, report_request
from tests.support import QueueReader, ServiceProcess, metadata, running, service_process, token, wait_for

OFFICER = metadata(token("officer", "330100", member_id="officer-faults"))
pytestmark = pytest.mark.slow


class Phones(threading.Thread):
    """Reports at a steady pace from a few phones; retries each report until it is answered."""

    def __init__(self, port: int, count: int, pace: float = 0.03):
        super().__init__(daemon=True)
        self.port, self.count, self.pace = port, count, pace
        self.accepted: set[str] = set()
        self.retries = 0

    def attempts(self) -> int:
        return len(self.accepted) + self.retries

    def run(self) -> None:
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        stub = incidents_pb2_grpc.IncidentServiceStub(channel)
        for i in range(self.count):
            req = report_request(GRIDS[i % len(GRIDS)], title=f"fault stream {i}")
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    stub.Report(req, metadata=OFFICER, timeout=5)
                    self.accepted.add(req.report_id)
                    break
                except grpc.RpcError as exc:
                    if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                          grpc.StatusCode.INTERNAL):
                        raise
                    self.retries += 1
                    time.sleep(0.2)
            time.sleep(self.pace)
        channel.close()


def stream_flowing(phones: Phones) -> None:
    wait_for(lambda: len(phones.accepted) >= 10, 60, what="the phones' first ten reports to be answered")


def through_an_outage(phones: Phones) -> None:
    """Returns once the phones have sent five more reports (answered or not) while something is down."""
    before = phones.attempts()
    wait_for(lambda: phones.attempts() >= before + 5, 60, what="five reports sent during the outage")


@dataclass
class System:
    port: int
    grpc: ServiceProcess
    incidents: ServiceProcess
    dispatch: ServiceProcess
    queue: str


@pytest.fixture
def system(environment, city, categories):
    """This test's own incidents and dispatch processes (the session's are left alone) and a
    durable subscriber."""
    with open(DEFAULT_CONFIG, encoding="utf-8") as f:
        dispatch_ops.load_config(SYSTEM, yaml.safe_load(f))
    grpc_proc = service_process(environment, "incidents", "grpc", name="faults-incidents-grpc")
    nameko_proc = service_process(environment, "incidents", "nameko", name="faults-incidents-nameko")
    dispatch_proc = service_process(environment, "dispatch", "nameko", name="faults-dispatch-nameko")
    queue = f"gridbus.sub.faults-{uuid.uuid4().hex[:6]}"
    with kombu.Connection(environment["GRIDBUS_AMQP_URI"]) as conn:
        declare_subscription(conn, queue, ["incidents.incident.reported"])
    with running(grpc_proc, nameko_proc, dispatch_proc):
        yield System(grpc_proc.port, grpc_proc, nameko_proc, dispatch_proc, queue)


def drain_envelopes(uri: str, queue: str, done, timeout: float = 60) -> list[dict]:
    """Every event in a subscriber's queue (with repeats): taken until done(envelopes) holds
    (or timeout), and then whatever else the queue holds."""
    with QueueReader(uri, queue) as reader:
        reader.drain(done, timeout)
        return reader.drain()


def subscriber_ids(uri: str, queue: str, expected: set[str], timeout: float = 60) -> list[str]:
    """The report ids of every event in the queue (with repeats), once all expected have come."""
    def report_ids(envelopes):
        return [e["data"]["report_id"] for e in envelopes]
    return report_ids(drain_envelopes(uri, queue, lambda got: expected <= set(report_ids(got)), timeout))


def assert_exactly_once(uri: str, queue: str, phones: Phones) -> None:
    """Stored once, dispatched once (one task, one dispatch in the incident's history), and
    the reported event reached the subscriber (repeats carry the same event id)."""
    assert phones.accepted, "no report was answered"
    ids = list(phones.accepted)
    with session_scope() as s:
        rows = s.execute(text("SELECT report_id::text, count(*) FROM incidents.incidents "
                              "WHERE report_id = ANY(CAST(:ids AS uuid[])) GROUP BY report_id"), {"ids": ids}).all()
    assert {r[0] for r in rows} == phones.accepted and all(r[1] == 1 for r in rows)
    seen = subscriber_ids(uri, queue, phones.accepted)
    assert phones.accepted <= set(seen), f"{len(phones.accepted - set(seen))} events never arrived"

    def dispatch_counts():
        with session_scope() as s:
            return s.execute(text(
                "SELECT count(*) FILTER (WHERE tasks = 1 AND dispatches = 1), count(*) FILTER (WHERE tasks > 1 "
                "OR dispatches > 1) FROM (SELECT i.id, (SELECT count(*) FROM dispatch.tasks t WHERE t.incident_id = i.id) "
                "tasks, (SELECT count(*) FROM incidents.history h WHERE h.incident_id = i.id AND h.action = 'dispatch') "
                "dispatches FROM incidents.incidents i WHERE i.report_id = ANY(CAST(:ids AS uuid[]))) x"),
                {"ids": ids}).one()
    wait_for(lambda: dispatch_counts()[0] >= len(ids), 90, what=f"all {len(ids)} reports to be dispatched")
    once, more = dispatch_counts()
    assert (once, more) == (len(ids), 0), f"{len(ids) - once} not dispatched exactly once ({more} more than once)"


@pytest.mark.parametrize("victim", ["grpc", "incidents", "dispatch"])
def test_kill_9_a_process_during_a_stream(environment, system, victim):
    """kill -9 the incidents gRPC server, the incidents nameko process (relay and handlers) or
    the dispatch nameko process, and restart it while phones keep reporting."""
    phones = Phones(system.port, 100)
    phones.start()
    stream_flowing(phones)
    proc = getattr(system, victim)
    proc.kill9()
    through_an_outage(phones)
    proc.start()
    phones.join(180)
    if victim == "grpc":
        assert phones.retries > 0, "the fault did not hit the stream"
    assert_exactly_once(environment["GRIDBUS_AMQP_URI"], system.queue, phones)


@pytest.mark.parametrize("victim", ["grid-grpc", "grid-nameko"])
def test_kill_9_a_grid_process_during_a_stream(environment, system, victim):
    """Reports are pinned by PostGIS from the incidents processes, so losing a grid process does
    not touch the stream; restarted, grid answers again."""
    uri = environment["GRIDBUS_AMQP_URI"]
    grid_grpc = service_process(environment, "grid", "grpc", name="faults-grid-grpc")
    grid_nameko = service_process(environment, "grid", "nameko", name="faults-grid-nameko")
    with running(grid_grpc, grid_nameko):
        phones = Phones(system.port, 60)
        phones.start()
        stream_flowing(phones)
        proc = grid_grpc if victim == "grid-grpc" else grid_nameko
        proc.kill9()
        through_an_outage(phones)
        proc.start()
        phones.join(180)
        assert_exactly_once(uri, system.queue, phones)
        grid_grpc.wait_ready()
        grid_nameko.wait_ready()
        with grpc.insecure_channel(f"127.0.0.1:{grid_grpc.port}") as channel:
            lon, lat = inside(GRIDS[0])
            located = grid_pb2_grpc.GridServiceStub(channel).Locate(grid_pb2.LocateRequest(lon=lon, lat=lat),
                                                                    metadata=OFFICER, timeout=5)
        assert located.grid.code == GRIDS[0]


def test_restart_rabbitmq_during_a_stream(environment, system):
    # Enough reports to outlast `stop_app`, which takes seconds with the plugins gridbus enables.
    phones = Phones(system.port, 400)
    phones.start()
    stream_flowing(phones)
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=120)
    try:
        through_an_outage(phones)  # reports keep being accepted: the outbox holds their events
    finally:  # the broker is shared: never leave it stopped, whatever happened
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)
    phones.join(180)
    assert_exactly_once(environment["GRIDBUS_AMQP_URI"], system.queue, phones)


def test_postgresql_refuses_connections_for_a_while(environment, system):
    db = environment["GRIDBUS_DATABASE_URL"].rsplit("/", 1)[1]
    phones = Phones(system.port, 100)
    phones.start()
    stream_flowing(phones)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {db} ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                      "AND pid <> pg_backend_pid()", (db,))
        through_an_outage(phones)
        admin.execute(f"ALTER DATABASE {db} ALLOW_CONNECTIONS true")
    dispose_engines()  # this test process's own pool lost its connections too
    phones.join(180)
    assert phones.retries > 0, "the outage did not hit the stream"
    assert_exactly_once(environment["GRIDBUS_AMQP_URI"], system.queue, phones)
