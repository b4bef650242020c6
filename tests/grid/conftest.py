from __future__ import annotations

import grpc
import pytest

from gridbus.grid.v1 import grid_pb2_grpc
from tests.support import service_process


@pytest.fixture(scope="session")
def grid_server(environment, city):
    with service_process(environment, "grid", "grpc") as proc:
        yield proc.port


@pytest.fixture(scope="session")
def grid_stub(grid_server):
    with grpc.insecure_channel(f"127.0.0.1:{grid_server}") as channel:
        yield grid_pb2_grpc.GridServiceStub(channel)
