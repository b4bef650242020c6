"""The limits every gRPC server holds (shared/grpc_limits.py), each on a real server started with
a small limit: past it, RESOURCE_EXHAUSTED."""
from __future__ import annotations

import grpc
import pytest

from gridbus.grid.v1 import grid_pb2 as gpb
from gridbus.grid.v1 import grid_pb2_grpc
from gridbus.incidents.v1 import incidents_pb2 as ipb
from gridbus.incidents.v1 import incidents_pb2_grpc
from tests.incidents.conftest import GRIDS, inside, report_request
from tests.support import metadata, service_process, token, wait_for

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
OFFICER = metadata(token("officer", GRIDS[0][:6], member_id="limits-officer"))


def _code(call) -> grpc.StatusCode:
    try:
        call()
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        return exc.code()


def test_requests_per_caller_are_limited_and_services_are_not(environment, city):
    with service_process(environment, "grid", "grpc", name="grid-grpc-rate",
                         env={"GRIDBUS_GRPC_RATE_LIMIT": "5/minute"}) as proc, \
            grpc.insecure_channel(f"127.0.0.1:{proc.port}") as channel:
        grid = grid_pb2_grpc.GridServiceStub(channel)
        lon, lat = inside(GRIDS[0])

        def locate(who):
            return _code(lambda: grid.Locate(gpb.LocateRequest(lon=lon, lat=lat), metadata=who))
        assert [locate(OFFICER) for _ in range(5)] == [grpc.StatusCode.OK] * 5
        assert locate(OFFICER) == EXHAUSTED
        # The same member with another token is the same caller; another member is not.
        assert locate(metadata(token("officer", GRIDS[1], member_id="limits-officer"))) == EXHAUSTED
        assert locate(metadata(token("officer", GRIDS[0], member_id="limits-other"))) == grpc.StatusCode.OK
        service = metadata(token("service", member_id="limits-service"))
        assert {locate(service) for _ in range(10)} == {grpc.StatusCode.OK}
        # Without a valid token the peer is the caller, and is refused for its token first.
        assert [locate([("authorization", "Bearer nonsense")]) for _ in range(6)] == \
            [grpc.StatusCode.UNAUTHENTICATED] * 5 + [EXHAUSTED]


def _incidents(environment, name, **limits):
    with service_process(environment, "incidents", "grpc", name=name, env=limits) as proc, \
            grpc.insecure_channel(f"127.0.0.1:{proc.port}") as channel:
        yield incidents_pb2_grpc.IncidentServiceStub(channel)


@pytest.fixture(scope="module")
def incidents_limited(environment, city, categories, departments):
    yield from _incidents(environment, "incidents-grpc-streams", GRIDBUS_GRPC_MAX_STREAM_MESSAGES="3",
                          GRIDBUS_GRPC_MAX_STREAM_SECONDS="1")


@pytest.fixture(scope="module")
def incidents_two_at_once(environment, city, categories, departments):
    yield from _incidents(environment, "incidents-grpc-concurrency", GRIDBUS_GRPC_MAX_CONCURRENT_RPCS="2")


def test_a_client_stream_holds_at_most_the_limit(incidents_limited):
    batch = lambda n: incidents_limited.ReportBatch(iter([report_request(GRIDS[0]) for _ in range(n)]),  # noqa: E731
                                                    metadata=OFFICER, timeout=30)
    assert batch(3).accepted == 3
    with pytest.raises(grpc.RpcError) as info:
        batch(4)
    assert info.value.code() == EXHAUSTED and "at most 3 messages" in info.value.details()


def test_a_server_stream_ends_when_its_time_is_up(incidents_limited):
    stream = incidents_limited.Watch(ipb.WatchRequest(grid_code=GRIDS[0][:6]), metadata=OFFICER, timeout=30)
    with pytest.raises(grpc.RpcError) as info:
        list(stream)
    assert info.value.code() == EXHAUSTED and "at most 1 s" in info.value.details()


def test_rpcs_at_once_are_limited(incidents_two_at_once):
    watcher = lambda: incidents_two_at_once.Watch(ipb.WatchRequest(grid_code=GRIDS[0][:6]), metadata=OFFICER,  # noqa: E731
                                              timeout=30)
    categories = lambda: incidents_two_at_once.ListCategories(ipb.ListCategoriesRequest(), metadata=OFFICER,  # noqa: E731
                                                          timeout=10)
    streams = [watcher(), watcher()]
    for stream in streams:
        stream.initial_metadata()  # both are being served (or ended: said below)
    try:
        ended = [(s.code(), s.details()) for s in streams if s.done()]
        assert not ended, f"a stream that should hold its place ended: {ended}"
        assert _code(categories) == EXHAUSTED
    finally:
        for stream in streams:
            stream.cancel()
    assert wait_for(lambda: _code(categories) == grpc.StatusCode.OK, 10)
