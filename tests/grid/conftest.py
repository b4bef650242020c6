from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from gridbus.grid.v1 import grid_pb2_grpc
from tests.support import Process, free_port, python, wait_for_grpc


@pytest.fixture(scope="session")
def grid_server(environment, city):
    port = free_port()
    proc = Process(python("-m", "services.grid.grpc_server"),
                   {**environment, "GRIDBUS_GRID_GRPC_PORT": str(port)}, "grid-grpc", Path(environment["LOG_DIR"]))
    proc.start()
    try:
        wait_for_grpc(port, proc)
        yield port
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def grid_stub(grid_server):
    with grpc.insecure_channel(f"127.0.0.1:{grid_server}") as channel:
        yield grid_pb2_grpc.GridServiceStub(channel)
