from __future__ import annotations

import grpc
import pytest
import yaml

from gridbus.dispatch.v1 import dispatch_pb2_grpc
from services.dispatch import operations as ops
from services.dispatch.cli import DEFAULT_CONFIG
from tests.conftest import SYSTEM
from tests.support import service_process


@pytest.fixture(scope="module")
def dispatch_config(environment, city):
    with open(DEFAULT_CONFIG, encoding="utf-8") as f:
        ops.load_config(SYSTEM, yaml.safe_load(f))


@pytest.fixture(scope="module")
def dispatch_nameko(environment, dispatch_config, incidents_nameko):
    """Module-scoped: other packages' tests expect reported incidents to stay reported."""
    with service_process(environment, "dispatch", "nameko") as proc:
        yield proc


@pytest.fixture(scope="module")
def dispatch_server(environment, dispatch_config):
    with service_process(environment, "dispatch", "grpc") as proc:
        yield proc.port


@pytest.fixture(scope="module")
def dispatch_stub(dispatch_server):
    with grpc.insecure_channel(f"127.0.0.1:{dispatch_server}") as channel:
        yield dispatch_pb2_grpc.DispatchServiceStub(channel)
