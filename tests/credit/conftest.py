from __future__ import annotations

import sys
from pathlib import Path

import grpc
import pytest

from gridbus.credit.v1 import credit_pb2_grpc
from shared.health import check_nameko
from tests.support import Process, free_port, python, wait_for_grpc, wait_healthy


@pytest.fixture(scope="module")
def credit_nameko(environment):
    nameko = str(Path(sys.executable).parent / "nameko")
    proc = Process([nameko, "run", "services.credit.service", "--broker", environment["GRIDBUS_AMQP_URI"]],
                   {**environment, "GRIDBUS_CREDIT_SWEEP_SECONDS": "1",
                                                 "GRIDBUS_CREDIT_CHECKPOINT_SECONDS": "1"}, "credit-nameko",
                   Path(environment["LOG_DIR"])).start()
    try:
        wait_healthy(proc, lambda: check_nameko(environment["GRIDBUS_AMQP_URI"], "credit", timeout=2), 60)
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def credit_server(environment):
    port = free_port()
    proc = Process(python("-m", "services.credit.grpc_server"),
                   {**environment, "GRIDBUS_CREDIT_GRPC_PORT": str(port)}, "credit-grpc",
                   Path(environment["LOG_DIR"])).start()
    try:
        wait_for_grpc(port, proc)
        yield proc, port
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def credit(credit_server):
    with grpc.insecure_channel(f"127.0.0.1:{credit_server[1]}") as channel:
        yield credit_pb2_grpc.CreditServiceStub(channel)


@pytest.fixture(scope="session")
def authorities(environment):
    """The bundled sample authorities, their lists and what the lists restrict."""
    import yaml

    from services.credit import intake
    from tests.conftest import SYSTEM
    with open(intake.DIRECTORY_FILE, encoding="utf-8") as f:
        return intake.load_authorities(SYSTEM, yaml.safe_load(f))


PUBLIC_RATE = 20  # per minute per client; tests speak as distinct clients (X-Forwarded-For from 127.0.0.1)


@pytest.fixture(scope="module")
def credit_public(environment, authorities):
    """The public credit endpoint's process; yields its base URL."""
    from tests.support import wait_http
    port = free_port()
    proc = Process(python("-m", "services.credit.public_http"),
                   {**environment, "GRIDBUS_CREDIT_PUBLIC_HTTP_PORT": str(port),
                    "GRIDBUS_PUBLIC_RATE_LIMIT": f"{PUBLIC_RATE}/minute"}, "credit-http",
                   Path(environment["LOG_DIR"])).start()
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()
