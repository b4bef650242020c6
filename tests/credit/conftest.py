from __future__ import annotations

import grpc
import pytest

from gridbus.credit.v1 import credit_pb2_grpc
from tests.support import service_process


@pytest.fixture(scope="module")
def credit_nameko(environment):
    with service_process(environment, "credit", "nameko", env={"GRIDBUS_CREDIT_SWEEP_SECONDS": "1",
                                                               "GRIDBUS_CREDIT_CHECKPOINT_SECONDS": "1"}) as proc:
        yield proc


@pytest.fixture(scope="module")
def credit_server(environment):
    with service_process(environment, "credit", "grpc") as proc:
        yield proc, proc.port


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
    rate = {"GRIDBUS_PUBLIC_RATE_LIMIT": f"{PUBLIC_RATE}/minute"}
    with service_process(environment, "credit", "http", env=rate) as proc:
        yield f"http://127.0.0.1:{proc.port}"
