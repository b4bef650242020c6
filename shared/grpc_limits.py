"""Limits every gRPC server holds, whatever its methods; past each, RESOURCE_EXHAUSTED:

- RPCs at once per process (running and queued): grpc's own `maximum_concurrent_rpcs`;
- messages in one client stream: the one past the limit ends the call;
- how long a server stream lasts: then it ends, and the client opens another (the stream's
  loop sees `context.is_active()` turn false; between messages the time is checked too);
- requests per caller per process, a sliding window (the `limits` library): the caller is the
  token's member and role, or the peer address without a valid token. Gridbus services' own
  tokens are not counted: they act for the system, on its schedule.

Health checks are never limited. Defaults are in shared/config.py and the README."""
from __future__ import annotations

import time
from dataclasses import dataclass

import grpc
import limits

from shared.auth import SERVICE, principal_from_header
from shared.config import settings
from shared.errors import DomainError, ResourceExhausted

HEALTH_PREFIX = "/grpc.health.v1.Health/"


@dataclass(frozen=True)
class GrpcLimits:
    max_concurrent_rpcs: int
    max_stream_messages: int
    max_stream_seconds: float
    rate: str

    @classmethod
    def from_settings(cls) -> GrpcLimits:
        s = settings()
        return cls(s.grpc_max_concurrent_rpcs, s.grpc_max_stream_messages, s.grpc_max_stream_seconds,
                   s.grpc_rate_limit)


def _caller_key(context) -> str | None:
    """Who the rate counts against; None: a gridbus service, not counted."""
    value = next((v for k, v in context.invocation_metadata() or () if k == "authorization"), None)
    try:
        principal = principal_from_header(value)
    except DomainError:
        return f"peer {context.peer().rsplit(':', 1)[0]}"
    return None if principal.role == SERVICE else f"{principal.role} {principal.member_id}"


class _Expiring:
    """The servicer's context, inactive once the stream's time is up."""

    def __init__(self, context, deadline: float):
        self._context, self._deadline = context, deadline

    def is_active(self) -> bool:
        return self._context.is_active() and time.monotonic() < self._deadline

    def __getattr__(self, name):
        return getattr(self._context, name)


class LimitsInterceptor(grpc.ServerInterceptor):
    def __init__(self, limits_: GrpcLimits):
        self.limits = limits_
        self._rate = limits.parse(limits_.rate)
        self._limiter = limits.strategies.SlidingWindowCounterRateLimiter(limits.storage.MemoryStorage())

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(HEALTH_PREFIX):
            return handler
        if handler.request_streaming and handler.response_streaming:
            return handler._replace(stream_stream=self._admitted(self._counted(self._timed(handler.stream_stream))))
        if handler.request_streaming:
            return handler._replace(stream_unary=self._admitted(self._counted(handler.stream_unary)))
        if handler.response_streaming:
            return handler._replace(unary_stream=self._admitted(self._timed(handler.unary_stream)))
        return handler._replace(unary_unary=self._admitted(handler.unary_unary))

    def _admitted(self, behaviour):
        def admitted(request, context):
            key = _caller_key(context)
            if key is not None and not self._limiter.hit(self._rate, key):
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"more than {self.limits.rate} requests from this caller; slow down and retry")
            return behaviour(request, context)
        return admitted

    def _counted(self, behaviour):
        most = self.limits.max_stream_messages

        def counted(request_iterator, context):
            def messages():
                for n, message in enumerate(request_iterator, start=1):
                    if n > most:  # a domain error: the servicer's wrapper gives it its status
                        raise ResourceExhausted(f"at most {most} messages in one stream; send the rest in another")
                    yield message
            return behaviour(messages(), context)
        return counted

    def _timed(self, behaviour):
        seconds = self.limits.max_stream_seconds

        def timed(request, context):
            deadline = time.monotonic() + seconds
            for response in behaviour(request, _Expiring(context, deadline)):
                yield response
                if time.monotonic() >= deadline:
                    break
            if time.monotonic() >= deadline and context.is_active():
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"a stream lasts at most {seconds:g} s; open another")
        return timed

