from __future__ import annotations

import grpc
import pytest

from gridbus.sensors.v1 import sensors_pb2_grpc
from tests.support import service_process


@pytest.fixture(scope="module")
def sensors_nameko(environment, city):
    """The alarm intake and a silent-device sweep every second."""
    with service_process(environment, "sensors", "nameko", env={"GRIDBUS_SENSORS_SWEEP_SECONDS": "1"}) as proc:
        yield proc


@pytest.fixture(scope="module")
def sensors_stub(environment, city):
    with service_process(environment, "sensors", "grpc") as proc:
        with grpc.insecure_channel(f"127.0.0.1:{proc.port}") as channel:
            yield sensors_pb2_grpc.SensorServiceStub(channel)
