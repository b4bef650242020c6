"""The grid service's nameko process on the real broker: RPC for other services, with the
caller's token in the context data, and the outbox relay it runs."""
import sys
import time
from pathlib import Path

import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from demo.city import grid_cells
from services.grid import operations as ops
from tests.conftest import CITY
from tests.event_contract import assert_payloads_match_protos
from tests.grid.test_outbox import ADMIN_CALLER
from shared.health import check_nameko
from tests.support import EventTap, Process, token, wait_healthy


@pytest.fixture(scope="module")
def grid_nameko(environment, city):
    nameko = str(Path(sys.executable).parent / "nameko")
    proc = Process([nameko, "run", "services.grid.service", "--broker", environment["GRIDBUS_AMQP_URI"]],
                   environment, "grid-nameko", Path(environment["LOG_DIR"]))
    proc.start()
    config = {"AMQP_URI": environment["GRIDBUS_AMQP_URI"]}
    wait_healthy(proc, lambda: check_nameko(config["AMQP_URI"], "grid", timeout=2))
    yield config
    proc.stop()


def rpc(config, role="service", *scope):
    return ClusterRpcProxy(config, timeout=10,
                           context_data={"authorization": f"Bearer {token(role, *scope, member_id='dispatch-service')}"})


def test_health(grid_nameko):
    with ClusterRpcProxy(grid_nameko, timeout=10) as cluster:
        assert cluster.grid.health() == {"status": "SERVING"}


def test_locate_over_rpc(grid_nameko):
    code, w, s, e, n = grid_cells(CITY)[3]
    with rpc(grid_nameko) as cluster:
        found = cluster.grid.locate((w + e) / 2, (s + n) / 2)
    assert found["code"] == code and found["ancestors"][-1] == code[:12]


def test_locate_over_rpc_takes_the_datum_of_the_point(grid_nameko):
    from tests.grid.test_locate import AS_BD09, HERE, WEST
    with rpc(grid_nameko) as cluster:
        found = cluster.grid.locate(*AS_BD09, "bd09")
        with pytest.raises(RemoteError) as unknown:
            cluster.grid.locate(*HERE, "mars")
    assert found["code"] == WEST
    assert (found["wgs84"]["lon"], found["wgs84"]["lat"]) == pytest.approx(HERE, abs=1e-7)
    assert unknown.value.exc_type == "InvalidArgument"


def test_the_nameko_process_locates_in_grids_imported_after_it_started(grid_nameko):
    from demo.city import CityPlan, build
    from tests.conftest import SYSTEM
    late = CityPlan(city_code="370100", name="Late City", west=117.0, south=36.5, east=117.2, north=36.7)
    code, w, s, e, n = grid_cells(late)[0]
    with rpc(grid_nameko) as cluster:
        with pytest.raises(RemoteError) as before:
            cluster.grid.locate((w + e) / 2, (s + n) / 2)
        ops.import_units(SYSTEM, build(late))
        deadline = time.monotonic() + 30
        while True:  # the process rebuilds its index when the import's NOTIFY arrives
            try:
                found = cluster.grid.locate((w + e) / 2, (s + n) / 2)
                break
            except RemoteError:
                assert time.monotonic() < deadline, "the nameko process never saw the import"
                time.sleep(0.1)
    assert before.value.exc_type == "NotFound" and found["code"] == code


def test_domain_errors_reach_the_caller_by_name(grid_nameko):
    with rpc(grid_nameko) as cluster:
        with pytest.raises(RemoteError) as outside:
            cluster.grid.locate(10.0, 10.0)
        with pytest.raises(RemoteError) as malformed:
            cluster.grid.locate(float("nan"), 30.0)
    assert outside.value.exc_type == "NotFound" and "outside every grid" in outside.value.value
    assert malformed.value.exc_type == "InvalidArgument"


def test_rpc_checks_the_caller_too(grid_nameko):
    with ClusterRpcProxy(grid_nameko, timeout=10) as anonymous:
        with pytest.raises(RemoteError) as info:
            anonymous.grid.locate(120.1, 30.1)
    assert info.value.exc_type == "Unauthenticated"
    with rpc(grid_nameko, "dispatcher", "330103") as cluster:
        with pytest.raises(RemoteError) as info:
            cluster.grid.get_unit("330102001")
    assert info.value.exc_type == "PermissionDenied"
    with rpc(grid_nameko, "dispatcher", "330102") as cluster:
        assert cluster.grid.get_unit("330102001")["level"] == "street"


def test_member_reads_over_rpc(grid_nameko):
    member = ops.create_member(ADMIN_CALLER, "Qian Ba", "13911112222", "officer")
    ops.assign_member(ADMIN_CALLER, member.id, "330103001001001", primary=True)
    with rpc(grid_nameko) as cluster:
        got = cluster.grid.get_member(member.id)
        ids = cluster.grid.list_members("330103001001")
    assert got["assignments"][0]["grid_code"] == "330103001001001"
    assert member.id in ids


def test_the_nameko_process_relays_the_outbox(grid_nameko, environment):
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "grid.member.*")
    try:
        member = ops.create_member(ADMIN_CALLER, "Zhou Jiu", "13933334444", "dispatcher")
        events = tap.drain(until=lambda ev: any(e["subject"] == f"members/{member.id}" for e in ev))
    finally:
        tap.close()
    assert [e["type"] for e in events if e["subject"] == f"members/{member.id}"] == ["grid.member.created"]
    assert_payloads_match_protos(events)
