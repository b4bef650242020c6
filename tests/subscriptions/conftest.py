from __future__ import annotations

import grpc
import pytest

from tests.support import service_process


@pytest.fixture(scope="module")
def subs(environment):
    with service_process(environment, "subscriptions", "grpc") as proc:
        with grpc.insecure_channel(f"127.0.0.1:{proc.port}") as channel:
            from gridbus.subscriptions.v1 import subscriptions_pb2_grpc
            yield subscriptions_pb2_grpc.SubscriptionServiceStub(channel)


@pytest.fixture(scope="module")
def delivery(environment):
    """The live delivery (the service's nameko side): puts events, filtered, into subscribers' queues."""
    with service_process(environment, "subscriptions", "nameko") as proc:
        yield proc
