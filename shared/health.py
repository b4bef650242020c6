"""Health checks of gridbus processes, shared by the CLI, the demo, the benchmarks and the tests."""
from __future__ import annotations

import time
from typing import Callable

from grpc_health.v1 import health_pb2, health_pb2_grpc


def check_grpc(target: str, timeout: float = 5.0, s=None, server_name: str | None = None) -> None:
    """Raises unless the gRPC server at host:port answers SERVING (grpc.health.v1); over TLS
    when the settings (`s`, else the environment's) say so, expecting a certificate for
    `server_name` when given (a probe dials 127.0.0.1; the certificate names the service)."""
    from shared import tls
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else None
    with tls.channel(target, s, options) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                          timeout=timeout)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise RuntimeError(f"{target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")


def check_nameko(amqp_uri: str, service: str, timeout: float = 5.0, s=None) -> None:
    """Raises unless the nameko service answers its `health` RPC."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from shared import tls
    from shared.broker_users import credentials

    class Proxy(ClusterRpcProxy):
        class ServiceContainer(ClusterRpcProxy.ServiceContainer):
            # Its reply queue is rpc.reply-<user>-<uuid>: the broker lets only that user read it.
            service_name = credentials(amqp_uri)[0] or "standalone_rpc_proxy"

    with Proxy({"AMQP_URI": amqp_uri, "AMQP_SSL": tls.amqp_ssl(s, amqp_uri)}, timeout=timeout) as cluster:
        getattr(cluster, service).health()


def wait_until(check: Callable[[], None], timeout: float = 60.0, interval: float = 0.3,
               alive: Callable[[], bool] = lambda: True) -> None:
    """Calls `check` until it stops raising; re-raises after `timeout`, or at once when `alive()`
    says the process being waited for has died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except Exception:
            if not alive() or time.monotonic() > deadline:
                raise
            time.sleep(interval)
