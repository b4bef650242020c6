"""gRPC plumbing every service's server uses: callers from metadata, domain errors to status
codes, and a server with the standard health checking protocol and a graceful stop."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import multiprocessing
import os
import signal
import threading
from concurrent import futures
from typing import Callable

from datetime import datetime, timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sqlalchemy.exc import DataError, DBAPIError

from shared import access, revocation, tls
from shared.auth import bearer, principal_from_header, verify
from shared.errors import DomainError, PermissionDenied, Unauthenticated
from shared.grpc_limits import GrpcLimits, LimitsInterceptor
from shared.observability import ServerObserver

log = logging.getLogger(__name__)

STATUS = {
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "ALREADY_EXISTS": grpc.StatusCode.ALREADY_EXISTS,
    "FAILED_PRECONDITION": grpc.StatusCode.FAILED_PRECONDITION,
    "ABORTED": grpc.StatusCode.ABORTED,
    "RESOURCE_EXHAUSTED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
    "UNAUTHENTICATED": grpc.StatusCode.UNAUTHENTICATED,
}

UNAVAILABLE_MESSAGE = "the database is unavailable; retry with the same request"


def _unavailable(exc: Exception) -> bool:
    """A lost or refused database connection: the client should retry, not give up."""
    return isinstance(exc, DBAPIError) and (exc.connection_invalidated or "connection" in str(exc.orig).lower())


# Larger requests are refused by grpc itself with RESOURCE_EXHAUSTED.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


def timestamp(when: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp; a missing time leaves the field unset (None), never 1970."""
    if when is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(when)
    return ts


def time_field(message, name: str) -> datetime | None:
    """A Timestamp field of a request as an aware UTC datetime; None when it is not set."""
    return getattr(message, name).ToDatetime(tzinfo=timezone.utc) if message.HasField(name) else None


def _metadata(context, key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v
    return None


def _bad_value(name: str, exc: DataError, context) -> None:
    """A value PostgreSQL refused as data (a NUL character, a number out of its column's range):
    the request's fault, which a validator should have named; logged so it gets one."""
    log.warning("%s: a request value reached the database unchecked: %s", name, exc.orig)
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a value in the request is malformed or out of range")


def _check_row(servicer, name: str, caller) -> None:
    """The servicer's access table (services/<svc>/access.py) lets the caller's role call this
    method; an anonymous caller (sign-in) needs a public row. A method without a row is refused."""
    rule = servicer.access.grpc.get(name)
    if caller is None:
        if rule is None or not rule.public:
            raise PermissionDenied(f"{name} is not declared public in the access table")
        return
    access.permit(rule, caller, name)


def unary(method=None, *, anonymous: bool = False):
    """Wraps a servicer method `(self, request, context, caller)`: authenticates the caller and
    turns domain errors into a status with their message; anything else is INTERNAL.
    `@unary(anonymous=True)`: no token needed, caller None (sign-in)."""
    if method is None:
        return functools.partial(unary, anonymous=anonymous)

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            caller = None if anonymous else principal_from_header(_metadata(context, "authorization"))
            _check_row(self, method.__name__, caller)
            return method(self, request, context, caller)
        except DomainError as exc:
            context.abort(STATUS[exc.code], exc.message)
        except DataError as exc:
            _bad_value(method.__name__, exc, context)
        except Exception as exc:
            if _unavailable(exc):
                log.warning("%s: %s", method.__name__, exc)
                context.abort(grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MESSAGE)
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, "internal error; it has been logged")

    return wrapper


class _SignedInStream:
    """A stream's context whose `is_active()` (which streams poll while they wait, each second)
    raises UNAUTHENTICATED once the caller's sessions are revoked: the stream ends with it."""

    def __init__(self, context, verified):
        self._context, self._verified = context, verified

    def __getattr__(self, name):
        return getattr(self._context, name)

    def check(self) -> None:
        if revocation.revoked(self._verified.principal.member_id, self._verified.issued_at):
            raise Unauthenticated("this member's sessions were revoked: the stream ends")

    def is_active(self) -> bool:
        self.check()
        return self._context.is_active()


def server_stream(method):
    """Like `unary`, for a servicer method that yields responses; the stream ends UNAUTHENTICATED
    when its caller's sessions are revoked (checked before each message and while it waits)."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            verified = verify(bearer(_metadata(context, "authorization")))
            _check_row(self, method.__name__, verified.principal)
            signed_in = _SignedInStream(context, verified)
            for message in method(self, request, signed_in, verified.principal):
                signed_in.check()
                yield message
        except DomainError as exc:
            context.abort(STATUS[exc.code], exc.message)
        except DataError as exc:
            _bad_value(method.__name__, exc, context)
        except Exception:
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, "internal error; it has been logged")

    return wrapper


def serve(name: str, add_servicer, servicer, port: int, *, workers: int = 16, block: bool = True,
          max_receive_bytes: int = MAX_MESSAGE_BYTES, share_port: bool = False):
    """Starts a server for one service with health checking; blocks until SIGTERM/SIGINT.
    share_port: one of serve_processes()'s processes, which serve one port together."""
    limits = GrpcLimits.from_settings()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name),
        # metrics and a trace span per call (shared/observability.py); then the limits every
        # server holds (shared/grpc_limits.py), RPCs at once among them
        interceptors=[ServerObserver(), LimitsInterceptor(limits)],
        maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
        options=[("grpc.max_receive_message_length", max_receive_bytes),
                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                 # A second server on a taken port must fail, not silently share its traffic,
                 # unless it is one of the processes started to share it.
                 ("grpc.so_reuseport", 1 if share_port else 0)],
    )
    add_servicer(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    credentials = tls.server_credentials()  # TLS (and client certificates) when configured
    address = f"[::]:{port}"
    bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    server.start()
    for service in ("", name):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s serving gRPC%s on port %d", name, " over TLS" if credentials else "", bound)
    if not block:
        return server, bound

    done = threading.Event()

    def stop(*_):
        for service in ("", name):
            health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        server.stop(grace=10).wait()
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    done.wait()
    return server, bound


def _die_with_parent() -> None:
    """Linux: this process gets SIGTERM when the process that started it dies, even by kill -9,
    so no server is left holding the shared port."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _serve_child(target: Callable[[], None]) -> None:
    _die_with_parent()
    if os.getppid() == 1:  # the parent died before prctl took effect
        return
    target()


def serve_processes(count: int, target: Callable[[], None], name: str) -> int:
    """Runs `target` in `count` processes (spawned: nothing of this one, grpc included, is
    inherited), each serving the same port with serve(share_port=True), and waits. SIGTERM or
    SIGINT stops them all gracefully; one that dies stops the others, and the exit status is 1,
    so the supervisor restarts the whole. Returns the exit status."""
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_serve_child, args=(target,), name=f"{name}-{i + 1}") for i in range(count)]
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    for child in children:
        child.start()
    log.info("%s: %d processes serving one port", name, count)
    while not stopping.is_set() and all(child.is_alive() for child in children):
        stopping.wait(0.5)
    if not stopping.is_set():
        log.error("%s: a process exited (%s); stopping the others",
                  name, ", ".join(f"{c.name}: {c.exitcode}" for c in children if not c.is_alive()))
    for child in children:
        if child.is_alive():
            child.terminate()  # SIGTERM: serve() stops gracefully
    for child in children:
        child.join(15)
        if child.is_alive():
            child.kill()
            child.join()
    return 0 if stopping.is_set() else 1

