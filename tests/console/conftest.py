"""The console on the real services: grid, incidents, dispatch and emergencies (gRPC servers and
nameko workers) and the console's own process, all on this run's database and vhost. The
incidents server and worker are the run's own (tests/conftest.py)."""
from __future__ import annotations

import contextlib
import dataclasses
import uuid

import httpx
import pytest
import yaml

from gridbus.incidents.v1 import incidents_pb2 as ipb
from services.dispatch import operations as dispatch_ops
from services.dispatch.cli import DEFAULT_CONFIG
from shared import auth
from shared.auth import Principal
from tests.conftest import SYSTEM
from tests.incidents.conftest import GRIDS, report_request
from tests.support import metadata, running, service_process, token, wait_for

DISTRICT, OTHER_DISTRICT = GRIDS[0][:6], GRIDS[-1][:6]
# Outdoor advertising has no rule here: its cases wait in the manual queue.
UNROUTED_CATEGORY = "0201"
# A case left in the manual queue escalates within seconds (and up a level every 3 s).
ACCESS_TTL_S = 8
FAST_DEADLINES = {"GRIDBUS_DISPATCH_ASSIGN_MINUTES": "0.02", "GRIDBUS_DISPATCH_ESCALATION_MINUTES": "0.05"}


@pytest.fixture(scope="package")
def routing(environment, city, categories):
    with open(DEFAULT_CONFIG, encoding="utf-8") as f:
        dispatch_ops.load_config(SYSTEM, yaml.safe_load(f))
    for rule in dispatch_ops.list_rules(SYSTEM):
        if UNROUTED_CATEGORY.startswith(rule.category_prefix) and rule.category_prefix:
            dispatch_ops.deactivate_rule(SYSTEM, rule.id)


@pytest.fixture(scope="package")
def photo_dir(tmp_path_factory):
    """The console's attachment store for this run (the local directory store)."""
    return tmp_path_factory.mktemp("attachments")


@pytest.fixture(scope="package")
def console_stack(environment, routing, incidents_server, incidents_nameko, photo_dir):
    """Every process the console talks to, and the console itself; yields its base URL. Cases
    keep the usual deadlines, so a form opened in the page stays at the versions it shows."""
    # Access tokens of seconds: the console renews them while the tests run, as it does in a shift.
    grid_grpc = service_process(environment, "grid", "grpc", name="console-grid-grpc",
                                env={"GRIDBUS_SIGNIN_ACCESS_TTL_SECONDS": str(ACCESS_TTL_S)})
    dispatch_grpc = service_process(environment, "dispatch", "grpc", name="console-dispatch-grpc")
    dispatch_nameko = service_process(environment, "dispatch", "nameko", name="console-dispatch-nameko")
    # grid's worker relays its events (officers' positions) to the bus
    grid_nameko = service_process(environment, "grid", "nameko", name="console-grid-nameko")
    # the officer's app's alerts: emergencies' worker (officers from grid's events, alerts) and API
    emergencies_nameko = service_process(environment, "emergencies", "nameko", name="console-emergencies-nameko")
    emergencies_grpc = service_process(environment, "emergencies", "grpc", name="console-emergencies-grpc")
    with running(grid_grpc, dispatch_grpc, dispatch_nameko, grid_nameko, emergencies_nameko, emergencies_grpc):
        ports = {"incidents": incidents_server, "grid": grid_grpc.port, "dispatch": dispatch_grpc.port,
                 "emergencies": emergencies_grpc.port}
        targets = {f"GRIDBUS_{s.upper()}_GRPC_TARGET": f"127.0.0.1:{p}" for s, p in ports.items()}
        env = {**targets, "GRIDBUS_ATTACHMENT_DIR": str(photo_dir)}
        with service_process(environment, "console", "http", env=env) as console:
            yield {"base": f"http://127.0.0.1:{console.port}", "ports": ports, "console": console,
                   "dispatch_nameko": dispatch_nameko}


@pytest.fixture
def fast_deadlines(environment, console_stack):
    """Dispatch's worker with deadlines of seconds while the test runs (cases it creates then
    escalate); the usual ones after."""
    worker = console_stack["dispatch_nameko"]

    def restart(extra_env: dict | None) -> None:
        worker.stop()
        worker.start(extra_env)
        worker.wait_ready()
    restart(FAST_DEADLINES)
    yield
    restart(None)


@pytest.fixture(scope="package")
def incidents_stub(stub, console_stack):
    """The incidents server the console calls, once every process is up."""
    return stub


def report(stub, grid: str, *, category: str = UNROUTED_CATEGORY, title: str | None = None) -> ipb.Incident:
    """A report from the grid's officer, over gRPC as a phone sends it."""
    officer = token("officer", grid, member_id=f"officer-{grid[-3:]}")
    req = report_request(grid, category=category, title=title or f"console test {uuid.uuid4().hex[:8]}")
    return stub.Report(req, metadata=metadata(officer)).incident


@contextlib.contextmanager
def signed_in(base: str, scope: str, *, role: str = "dispatcher", member_id: str | None = None):
    """An httpx client signed in to the console as a member of that scope, with its CSRF token."""
    with httpx.Client(base_url=base, timeout=20) as client:
        answer = client.post("/api/session", json={"token": token(role, scope, member_id=member_id or f"{role}-{scope}")})
        assert answer.status_code == 200, answer.text
        client.headers["X-CSRF-Token"] = answer.json()["csrf"]
        yield client


def officer_member(grid: str, name: str = "网格员") -> str:
    """A stored officer assigned to the grid (a random phone); their member id."""
    return member_with_password(auth.OFFICER, grid, name).id


# Every member member_with_password makes signs in with this.
PASSWORD = "console-tests-2026"


@dataclasses.dataclass(frozen=True)
class Member:
    id: str
    phone: str
    username: str


def member_with_password(role: str, unit: str, name: str) -> Member:
    """A stored member of that role assigned to the unit, with a random phone, a user name and
    PASSWORD to sign in with."""
    from services.grid import operations as grid_ops, signin as grid_signin
    admin = Principal("console-tests-admin", auth.ADMIN, (unit[:6],))
    phone = "139" + str(int(uuid.uuid4().hex[:12], 16))[-8:]
    member = grid_ops.create_member(admin, name, phone, role)
    grid_ops.assign_member(admin, member.id, unit, True)
    username = f"{role}-{uuid.uuid4().hex[:8]}"
    grid_signin.set_password(SYSTEM, member.id, PASSWORD, username)
    return Member(member.id, phone, username)


@contextlib.contextmanager
def officer_signed_in(base: str, grid: str, member_id: str):
    """An httpx client signed in to the officer's app as that officer of the grid."""
    with httpx.Client(base_url=base, timeout=20) as client:
        answer = client.post("/api/officer/session", json={"token": token("officer", grid, member_id=member_id)})
        assert answer.status_code == 200, answer.text
        client.headers["X-CSRF-Token"] = answer.json()["csrf"]
        yield client


def pytest_terminal_summary(terminalreporter):
    from tests.browser import ARTIFACTS
    shots = sorted(ARTIFACTS.glob("*.png")) if ARTIFACTS.is_dir() else []
    if shots:
        terminalreporter.write_line(f"console screenshots ({len(shots)}): {ARTIFACTS}/")
