from __future__ import annotations

import grpc
import pytest

from gridbus.emergencies.v1 import emergencies_pb2_grpc
from tests.support import running, service_process


@pytest.fixture(scope="module")
def emergency_stack(environment, city, categories, incidents_nameko):
    """Grid's relay (officers' events), emergencies' worker with 2-second stages, its gRPC server."""
    fast = {"GRIDBUS_EMERGENCIES_ANSWER_SECONDS": "2", "GRIDBUS_EMERGENCIES_SWEEP_SECONDS": "0.5",
            "GRIDBUS_EMERGENCIES_RADIUS_M": "1000"}
    with running(service_process(environment, "grid", "nameko", name="grid-nameko-emergencies"),
                 service_process(environment, "emergencies", "nameko", env=fast),
                 service_process(environment, "emergencies", "grpc", env=fast)) as (_, worker, server):
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield emergencies_pb2_grpc.EmergencyServiceStub(channel), worker
