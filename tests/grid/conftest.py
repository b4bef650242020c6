from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from demo.city import CityPlan, build
from gridbus.grid.v1 import grid_pb2_grpc
from services.grid import operations as ops
from shared.auth import SERVICE, Principal
from tests.support import Process, free_port, python, wait_for_grpc

SYSTEM = Principal("tests", SERVICE, ())
# 2 districts x 2 streets x 2 communities x 4 grids = 32 grids, 0.1 x 0.075 degrees each.
CITY = CityPlan()


@pytest.fixture(scope="session")
def city(environment):
    ops.import_units(SYSTEM, build(CITY))
    return CITY


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
