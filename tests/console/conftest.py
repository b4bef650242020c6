"""The console on the real services: grid, incidents and dispatch (gRPC servers and nameko
workers) and the console's own process, all on this run's database and vhost. The incidents
server and worker are the run's own (tests/conftest.py)."""
from __future__ import annotations

import contextlib
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from gridbus.incidents.v1 import incidents_pb2 as ipb
from services.dispatch import operations as dispatch_ops
from services.dispatch.cli import DEFAULT_CONFIG
from shared.health import check_nameko
from tests.conftest import SYSTEM
from tests.dispatch.conftest import dispatch_nameko_process, wait_dispatch
from tests.incidents.conftest import GRIDS, report_request
from tests.support import Process, free_port, metadata, python, token, wait_for_grpc, wait_healthy, wait_http

DISTRICT, OTHER_DISTRICT = GRIDS[0][:6], GRIDS[-1][:6]
# Outdoor advertising has no rule here: its cases wait in the manual queue.
UNROUTED_CATEGORY = "0201"
# A case left in the manual queue escalates within seconds (and up a level every 3 s).
FAST_DEADLINES = {"GRIDBUS_DISPATCH_ASSIGN_MINUTES": "0.02", "GRIDBUS_DISPATCH_ESCALATION_MINUTES": "0.05"}


@pytest.fixture(scope="package")
def routing(environment, city, categories):
    with open(DEFAULT_CONFIG, encoding="utf-8") as f:
        dispatch_ops.load_config(SYSTEM, yaml.safe_load(f))
    for rule in dispatch_ops.list_rules(SYSTEM):
        if UNROUTED_CATEGORY.startswith(rule.category_prefix) and rule.category_prefix:
            dispatch_ops.deactivate_rule(SYSTEM, rule.id)


def _grpc_server(environment, service: str) -> tuple[Process, int]:
    port = free_port()
    proc = Process(python("-m", f"services.{service}.grpc_server"),
                   {**environment, f"GRIDBUS_{service.upper()}_GRPC_PORT": str(port)}, f"console-{service}-grpc",
                   Path(environment["LOG_DIR"])).start()
    wait_for_grpc(port, proc)
    return proc, port


@pytest.fixture(scope="package")
def console_stack(environment, routing, incidents_server, incidents_nameko):
    """Every process the console talks to, and the console itself; yields its base URL. Cases
    keep the usual deadlines, so a form opened in the page stays at the versions it shows."""
    procs = []
    try:
        ports = {"incidents": incidents_server}
        for service in ("grid", "dispatch"):
            proc, ports[service] = _grpc_server(environment, service)
            procs.append(proc)
        dispatch_nameko = dispatch_nameko_process(environment, "console-dispatch-nameko").start()
        procs.append(dispatch_nameko)
        # grid's worker relays its events (officers' positions) to the bus
        grid_nameko = Process([str(Path(sys.executable).parent / "nameko"), "run", "services.grid.service", "--broker",
                               environment["GRIDBUS_AMQP_URI"]], environment, "console-grid-nameko",
                              Path(environment["LOG_DIR"])).start()
        procs.append(grid_nameko)
        wait_dispatch(environment, dispatch_nameko)
        wait_healthy(grid_nameko, lambda: check_nameko(environment["GRIDBUS_AMQP_URI"], "grid", timeout=2), 60)
        http_port = free_port()
        console = Process(python("-m", "services.console.server"), {
            **environment, "GRIDBUS_CONSOLE_HTTP_PORT": str(http_port),
            **{f"GRIDBUS_{s.upper()}_GRPC_TARGET": f"127.0.0.1:{p}" for s, p in ports.items()}},
            "console-http", Path(environment["LOG_DIR"])).start()
        procs.append(console)
        base = f"http://127.0.0.1:{http_port}"
        wait_http(base + "/healthz", console, 60)
        yield {"base": base, "ports": ports, "console": console, "dispatch_nameko": dispatch_nameko}
    finally:
        for proc in reversed(procs):
            proc.stop()


@pytest.fixture
def fast_deadlines(environment, console_stack):
    """Dispatch's worker with deadlines of seconds while the test runs (cases it creates then
    escalate); the usual ones after."""
    worker = console_stack["dispatch_nameko"]

    def restart(extra_env: dict | None) -> None:
        worker.stop()
        worker.start(extra_env)
        wait_dispatch(environment, worker)
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


def wait_for(fn, timeout: float = 30.0, interval: float = 0.2):
    """The first truthy value of fn(), or fn()'s last value after the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    return fn()


def pytest_terminal_summary(terminalreporter):
    from tests.browser import ARTIFACTS
    shots = sorted(ARTIFACTS.glob("*.png")) if ARTIFACTS.is_dir() else []
    if shots:
        terminalreporter.write_line(f"console screenshots ({len(shots)}): {ARTIFACTS}/")
