"""Revoking a member's sessions (deactivating them, releasing their last unit) refuses their tokens
on every entry point of every service within 30 s, and ends their open streams: the gRPC servers
of every service, the nameko RPC of grid and incidents, the console and the officer's app, the
incidents `Watch`, emergencies' `WatchAlerts`, the console's live events and the officer's app's
alert stream. On the real servers."""
from __future__ import annotations

import threading
import time
import uuid

import grpc
import httpx
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import text

from gridbus.credit.v1 import credit_pb2, credit_pb2_grpc
from gridbus.dispatch.v1 import dispatch_pb2, dispatch_pb2_grpc
from gridbus.emergencies.v1 import emergencies_pb2, emergencies_pb2_grpc
from gridbus.grid.v1 import grid_pb2, grid_pb2_grpc
from gridbus.incidents.v1 import incidents_pb2, incidents_pb2_grpc
from gridbus.sensors.v1 import sensors_pb2, sensors_pb2_grpc
from gridbus.subscriptions.v1 import subscriptions_pb2, subscriptions_pb2_grpc
from services.grid import operations as grid_ops, signin
from shared.auth import Principal
from shared.db import session_scope
from tests.conftest import SYSTEM
from tests.incidents.conftest import GRIDS
from tests.support import metadata, running, service_process, wait_for

WITHIN_S = 30
GRID = GRIDS[0]
DISTRICT = GRID[:6]
PASSWORD = "revocation-test-1"
UNAUTHENTICATED = "UNAUTHENTICATED"

# One call per gRPC service: any answer but UNAUTHENTICATED shows the token was taken.
GRPC_CALLS = {
    "grid": (grid_pb2_grpc.GridServiceStub, "GetUnit", grid_pb2.GetUnitRequest(code=GRID)),
    "incidents": (incidents_pb2_grpc.IncidentServiceStub, "ListCategories", incidents_pb2.ListCategoriesRequest()),
    "dispatch": (dispatch_pb2_grpc.DispatchServiceStub, "ListDepartments", dispatch_pb2.ListDepartmentsRequest()),
    "credit": (credit_pb2_grpc.CreditServiceStub, "GetSubject", credit_pb2.GetSubjectRequest()),
    "subscriptions": (subscriptions_pb2_grpc.SubscriptionServiceStub, "ListSubscriptions",
                      subscriptions_pb2.ListSubscriptionsRequest()),
    "sensors": (sensors_pb2_grpc.SensorServiceStub, "ListDevices", sensors_pb2.ListDevicesRequest()),
    "emergencies": (emergencies_pb2_grpc.EmergencyServiceStub, "GetAlert",
                    emergencies_pb2.GetAlertRequest(alert_id=str(uuid.uuid4()))),
}


@pytest.fixture(scope="module")
def stack(environment, city, categories, incidents_server, incidents_nameko):
    """Every service's gRPC server, grid's worker (it relays the revocation event), and the
    console; incidents' server and worker are the run's own."""
    servers = {name: service_process(environment, name, "grpc", name=f"revocation-{name}-grpc")
               for name in GRPC_CALLS if name != "incidents"}
    grid_nameko = service_process(environment, "grid", "nameko", name="revocation-grid-nameko")
    with running(*servers.values(), grid_nameko):
        ports = {name: proc.port for name, proc in servers.items()} | {"incidents": incidents_server}
        targets = {f"GRIDBUS_{s.upper()}_GRPC_TARGET": f"127.0.0.1:{ports[s]}" for s in ("grid", "incidents", "dispatch", "emergencies")}
        with service_process(environment, "console", "http", name="revocation-console", env=targets) as console:
            channels = {name: grpc.insecure_channel(f"127.0.0.1:{port}") for name, port in ports.items()}
            try:
                yield {"channels": channels, "console": f"http://127.0.0.1:{console.port}",
                       "amqp": {"AMQP_URI": environment["GRIDBUS_AMQP_URI"]}, "grid_process": servers["grid"]}
            finally:
                for channel in channels.values():
                    channel.close()


def _member(role: str, unit: str) -> str:
    from tests.conftest import CITY
    admin = Principal("revocation-admin", "admin", (CITY.city_code,))
    phone = "137" + str(uuid.uuid4().int)[:8]
    m = grid_ops.create_member(admin, f"Revoked {role}", phone, role)
    grid_ops.assign_member(admin, m.id, unit, primary=True)
    signin.set_password(SYSTEM, m.id, PASSWORD)
    return phone


def _sign_in(stack, phone: str) -> grid_pb2.SignInResponse:
    grid = grid_pb2_grpc.GridServiceStub(stack["channels"]["grid"])
    return grid.SignIn(grid_pb2.SignInRequest(login=phone, password=PASSWORD))


def _grpc_status(stack, service: str, token: str) -> str:
    stub_class, method, request = GRPC_CALLS[service]
    try:
        getattr(stub_class(stack["channels"][service]), method)(request, metadata=metadata(token), timeout=10)
        return "OK"
    except grpc.RpcError as exc:
        return exc.code().name


def _nameko_status(stack, call, token: str) -> str:
    with ClusterRpcProxy(stack["amqp"], timeout=10, context_data={"authorization": f"Bearer {token}"}) as cluster:
        try:
            call(cluster)
            return "OK"
        except RemoteError as exc:
            return UNAUTHENTICATED if exc.exc_type == "Unauthenticated" else exc.exc_type


def _console_session(stack, path: str, phone: str) -> httpx.Client:
    """Signed in to the console (or the officer's app) with the member's password, as in a browser."""
    client = httpx.Client(base_url=stack["console"], timeout=10)
    answer = client.post(path, json={"login": phone, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return client


class Stream:
    """A server stream read on a thread of its own, until it ends; how it ended."""

    def __init__(self, name: str, open_call):
        self.name, self.ended, self.code = name, threading.Event(), None
        self.call = open_call()
        self.call.initial_metadata()  # the server bound it: it is open
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for _ in self.call:
                pass
            self.code = "OK"
        except grpc.RpcError as exc:
            self.code = exc.code().name
        self.ended.set()


class EventStream:
    """Server-sent events from the console (its live events, the officer's alerts), read until
    the console ends them; `ready` is the event that says the stream is open."""

    def __init__(self, client: httpx.Client, path: str, ready: str):
        self.ended, self.path, self.events = threading.Event(), path, []
        self._client, self._ready, self._ready_line = client, threading.Event(), f"event: {ready}"
        threading.Thread(target=self._read, daemon=True).start()
        assert self._ready.wait(15), f"{path} did not open"

    def _read(self):
        with self._client.stream("GET", self.path, timeout=None) as answer:
            for line in answer.iter_lines():
                if line.startswith("event: "):
                    self.events.append(line.removeprefix("event: "))
                if line == self._ready_line:
                    self._ready.set()
        self.ended.set()


def test_revoked_members_are_refused_everywhere_within_30_s_and_their_streams_end(stack):
    officer_phone, dispatcher_phone = _member("officer", GRID), _member("dispatcher", DISTRICT)
    officer, dispatcher = _sign_in(stack, officer_phone), _sign_in(stack, dispatcher_phone)
    o_token, d_token = officer.access_token, dispatcher.access_token
    entry_points = {f"{service} gRPC": (lambda s=service: _grpc_status(stack, s, o_token)) for service in GRPC_CALLS}
    entry_points |= {
        "dispatcher's grid gRPC": lambda: _grpc_status(stack, "grid", d_token),
        "grid nameko RPC": lambda: _nameko_status(stack, lambda c: c.grid.get_member(officer.member_id), o_token),
        "incidents nameko RPC": lambda: _nameko_status(stack, lambda c: c.incidents.get_incident(str(uuid.uuid4())),
                                                       o_token),
    }
    console = _console_session(stack, "/api/session", dispatcher_phone)
    officer_app = _console_session(stack, "/api/officer/session", officer_phone)
    entry_points["console"] = lambda: UNAUTHENTICATED if console.get("/api/session").status_code == 401 else "OK"
    entry_points["officer's app"] = lambda: (UNAUTHENTICATED if officer_app.get("/api/officer/session").status_code
                                             == 401 else "OK")
    before = {name: call() for name, call in entry_points.items()}
    assert UNAUTHENTICATED not in before.values(), before

    incidents = incidents_pb2_grpc.IncidentServiceStub(stack["channels"]["incidents"])
    emergencies = emergencies_pb2_grpc.EmergencyServiceStub(stack["channels"]["emergencies"])
    streams = [Stream("incidents Watch", lambda: incidents.Watch(incidents_pb2.WatchRequest(grid_code=GRID),
                                                                  metadata=metadata(o_token))),
               Stream("emergencies WatchAlerts", lambda: emergencies.WatchAlerts(
                   emergencies_pb2.WatchAlertsRequest(), metadata=metadata(o_token)))]
    live = [EventStream(console, "/api/events", "hello"),
            EventStream(officer_app, "/api/officer/alerts/stream", "ready")]
    assert not any(s.ended.is_set() for s in [*streams, *live])

    grid = grid_pb2_grpc.GridServiceStub(stack["channels"]["grid"])
    admin = metadata(_admin_token())
    revoked_at = time.monotonic()
    grid.UpdateMember(grid_pb2.UpdateMemberRequest(id=officer.member_id, active=False), metadata=admin)
    grid.ReleaseMember(grid_pb2.ReleaseMemberRequest(member_id=dispatcher.member_id, grid_code=DISTRICT),
                       metadata=admin)

    def left() -> float:
        return max(0.1, revoked_at + WITHIN_S - time.monotonic())

    for name, call in entry_points.items():
        wait_for(lambda: call() == UNAUTHENTICATED, timeout=left(), interval=0.25, what=f"{name} to refuse the token")
    for stream in streams:
        assert stream.ended.wait(left()), f"{stream.name} still open {WITHIN_S} s after the revocation"
        assert stream.code == UNAUTHENTICATED, (stream.name, stream.code)
    for stream in live:
        assert stream.ended.wait(left()), f"{stream.path} still open {WITHIN_S} s after the revocation"
    # Their refresh tokens are dead too.
    for answer in (officer, dispatcher):
        with pytest.raises(grpc.RpcError) as info:
            grid.Refresh(grid_pb2.RefreshRequest(refresh_token=answer.refresh_token))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_poll_of_grids_table_revokes_without_the_event(stack):
    """A revocation only in grid.session_revocations (no event at all) reaches every process through
    its poll (GRIDBUS_REVOCATION_POLL_SECONDS, 10 s)."""
    phone = _member("officer", GRID)
    officer = _sign_in(stack, phone)
    assert _grpc_status(stack, "dispatch", officer.access_token) != UNAUTHENTICATED
    with session_scope() as session:
        session.execute(text("INSERT INTO grid.session_revocations (member_id, revoked_before, updated_at) "
                             "VALUES (:m, now(), now()) ON CONFLICT (member_id) DO UPDATE "
                             "SET revoked_before = now(), updated_at = now()"), {"m": officer.member_id})
    revoked_at = time.monotonic()
    for service in ("dispatch", "credit", "grid"):
        wait_for(lambda: _grpc_status(stack, service, officer.access_token) == UNAUTHENTICATED,
                 timeout=max(0.1, revoked_at + WITHIN_S - time.monotonic()), interval=0.25,
                 what=f"{service} to read the revocation from grid's table")
    # Signing in again gives a token issued after it, which works.
    again = _sign_in(stack, phone)
    assert _grpc_status(stack, "dispatch", again.access_token) != UNAUTHENTICATED


def _admin_token() -> str:
    from shared.auth import mint_token
    from tests.conftest import CITY
    return mint_token("revocation-admin", "admin", [CITY.city_code])
