from __future__ import annotations

import sys
from pathlib import Path

import grpc
import pytest
import yaml

from gridbus.dispatch.v1 import dispatch_pb2_grpc
from services.dispatch import operations as ops
from services.dispatch.cli import DEFAULT_CONFIG
from shared.health import check_nameko
from tests.conftest import SYSTEM
from tests.support import Process, free_port, python, wait_for_grpc, wait_healthy


@pytest.fixture(scope="module")
def dispatch_config(environment, city):
    with open(DEFAULT_CONFIG, encoding="utf-8") as f:
        ops.load_config(SYSTEM, yaml.safe_load(f))


def dispatch_nameko_process(environment, name="dispatch-nameko", extra=None) -> Process:
    nameko = str(Path(sys.executable).parent / "nameko")
    return Process([nameko, "run", "services.dispatch.service", "--broker", environment["GRIDBUS_AMQP_URI"]],
                   {**environment, **(extra or {})}, name, Path(environment["LOG_DIR"]))


def wait_dispatch(environment, proc) -> None:
    wait_healthy(proc, lambda: check_nameko(environment["GRIDBUS_AMQP_URI"], "dispatch", timeout=2), 60)


@pytest.fixture(scope="module")
def dispatch_nameko(environment, dispatch_config, incidents_nameko):
    """Module-scoped: other packages' tests expect reported incidents to stay reported."""
    proc = dispatch_nameko_process(environment).start()
    try:
        wait_dispatch(environment, proc)
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def dispatch_server(environment, dispatch_config):
    port = free_port()
    proc = Process(python("-m", "services.dispatch.grpc_server"),
                   {**environment, "GRIDBUS_DISPATCH_GRPC_PORT": str(port)}, "dispatch-grpc",
                   Path(environment["LOG_DIR"])).start()
    try:
        wait_for_grpc(port, proc)
        yield port
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def dispatch_stub(dispatch_server):
    with grpc.insecure_channel(f"127.0.0.1:{dispatch_server}") as channel:
        yield dispatch_pb2_grpc.DispatchServiceStub(channel)
