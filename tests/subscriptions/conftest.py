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


@pytest.fixture(scope="module")
def grid_stub(environment, city):
    """Grid's gRPC server and its outbox relay, for officers' events."""
    from pathlib import Path

    from gridbus.grid.v1 import grid_pb2_grpc
    from tests.support import Process, python
    from shared.broker_users import env_name
    # As grid's broker user, as a deployment runs it: consumers take grid's events from no other.
    as_grid = {**environment, "GRIDBUS_AMQP_URI": environment[env_name("grid")]}
    relay = Process(python("-m", "shared.outbox", "grid"), as_grid, "subscriptions-grid-relay",
                    Path(environment["LOG_DIR"]))
    relay.start()
    try:
        with service_process(environment, "grid", "grpc", name="subscriptions-grid-grpc") as proc:
            with grpc.insecure_channel(f"127.0.0.1:{proc.port}") as channel:
                yield grid_pb2_grpc.GridServiceStub(channel)
    finally:
        relay.stop()
