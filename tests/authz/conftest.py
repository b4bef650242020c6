from __future__ import annotations

import grpc
import pytest

from gridbus.dispatch.v1 import dispatch_pb2_grpc
from gridbus.grid.v1 import grid_pb2_grpc
from tests.authz.world import MoreWorld
from tests.dispatch.conftest import dispatch_config  # noqa: F401  (fixtures)
from services import registry
from tests.support import running, service_process


@pytest.fixture(scope="module")
def world(environment, city, categories, departments, dispatch_config):  # noqa: F811
    return MoreWorld()


@pytest.fixture(scope="module")
def grpc_stubs(environment, city, dispatch_config):  # noqa: F811
    """A stub per service with a gRPC server, by service name."""
    servers = {"grid": grid_pb2_grpc.GridServiceStub, "dispatch": dispatch_pb2_grpc.DispatchServiceStub}
    with service_process(environment, "grid", "grpc") as g, service_process(environment, "dispatch", "grpc") as d:
        channels = {name: grpc.insecure_channel(f"127.0.0.1:{proc.port}") for name, proc in (("grid", g), ("dispatch", d))}
        yield {name: servers[name](channel) for name, channel in channels.items()}
        for channel in channels.values():
            channel.close()


@pytest.fixture(scope="module")
def nameko_config(environment, city, dispatch_config, incidents_nameko):  # noqa: F811
    with running(*(service_process(environment, name, "nameko", name=f"{name}-nameko-authz")
                   for name in ("grid", "dispatch", "credit"))):
        yield {"AMQP_URI": environment["GRIDBUS_AMQP_URI"]}


@pytest.fixture(scope="module")
def channels(environment, city, categories, departments, dispatch_config):  # noqa: F811
    """A channel to each service's gRPC server, by service name."""
    servers = [s for s in registry.SERVICES if s.grpc]
    with running(*(service_process(environment, s.name, "grpc", name=f"{s.name}-grpc-fuzz") for s in servers)) as procs:
        chans = {s.name: grpc.insecure_channel(f"127.0.0.1:{p.port}") for s, p in zip(servers, procs)}
        yield chans
        for c in chans.values():
            c.close()
