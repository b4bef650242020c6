"""Public HTTP endpoints: unauthenticated reads (and Open311's keyed writes) on Starlette under
uvicorn, with what every public endpoint needs written once.

- A body larger than `max_body_bytes`: 413, from its Content-Length or counted as it arrives
  (chunked bodies too); a body not complete within `body_timeout` of the request's headers,
  however steadily it trickles in: 408. An invalid Content-Length (`-1`) never reaches the app:
  uvicorn's parser (h11) answers 400 and closes the connection.
- Request headers not complete within `header_timeout` of the connection opening (or of the
  previous response on a kept-alive one): the connection is closed (uvicorn has no header
  timeout of its own; `serve` adds one to its h11 protocol). Headers larger than
  `max_header_bytes` are refused by h11; idle keep-alive connections close after
  `keepalive_timeout`.
- More than `rate` requests from one client: 429 with Retry-After (the `limits` library, a
  moving window in memory, so per process). The client is the peer's address, or the
  X-Forwarded-For of a proxy listed in `forwarded_allow_ips` (uvicorn's proxy headers).
- More than `max_concurrency` connections and requests at once: 503 (uvicorn's limit_concurrency,
  a plain-text answer).
- Domain errors become typed errors with their HTTP status, and so do 404/405 and the limits
  above: `{"error": {"code": "NOT_FOUND", "message": "..."}}` by default, or what the app's
  `ErrorRenderer` makes of them (Open311 answers its own error lists, in JSON or XML).
- GET /healthz (200, or 503 when the health check raises) and GET /openapi.json, built from
  the endpoints' docstrings (the YAML after `---`).

Endpoints are plain functions run in a worker thread (they call the services' synchronous
operations): `json_endpoint(fn)` for `fn(request) -> dict`, `threaded(fn, errors)` for
`fn(request, body) -> Response`. Build the app with create_app and run it with serve."""
from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable, Protocol

import h11
import limits
import uvicorn
from sqlalchemy.exc import InterfaceError, OperationalError, TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator
from uvicorn.protocols.http.h11_impl import H11Protocol

from shared.config import Settings, settings
from shared.errors import DomainError
from shared.timefmt import iso_utc

log = logging.getLogger(__name__)

# gRPC status names (of domain errors, or of a service's answer) to HTTP statuses.
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
               "ALREADY_EXISTS": 409, "FAILED_PRECONDITION": 409, "ABORTED": 409, "RESOURCE_EXHAUSTED": 429,
               "UNAVAILABLE": 503}
_HTTP_CODE = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT",
              413: "PAYLOAD_TOO_LARGE", 429: "RATE_LIMITED", 503: "UNAVAILABLE"}
HEALTH_PATH = "/healthz"
BODY_METHODS = ("POST", "PUT", "PATCH")


@dataclass(frozen=True)
class Limits:
    rate: str = "60/minute"
    max_body_bytes: int = 16 * 1024
    body_timeout: float = 10.0
    header_timeout: float = 10.0
    max_concurrency: int = 64
    max_header_bytes: int = 16 * 1024
    keepalive_timeout: int = 5
    forwarded_allow_ips: str = "127.0.0.1"

    @classmethod
    def from_settings(cls, s: Settings | None = None, *, max_body_bytes: int = 16 * 1024) -> "Limits":
        s = s or settings()
        return cls(rate=s.public_rate_limit, max_concurrency=s.public_max_concurrency,
                   forwarded_allow_ips=s.public_forwarded_allow_ips, body_timeout=s.public_body_timeout_seconds,
                   header_timeout=s.public_header_timeout_seconds, max_body_bytes=max_body_bytes)


class ErrorRenderer(Protocol):
    def __call__(self, path: str, status: int, code: str, message: str,
                 headers: dict | None = None) -> Response: ...


def json_error(path: str, status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    """The default error body: `{"error": {"code", "message"}}`."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def jsonable(value):
    """Dates as YYYY-MM-DD, times as UTC ISO 8601 with Z, containers recursively."""
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def threaded(fn: Callable[[Request, bytes], Response], errors: ErrorRenderer = json_error):
    """An async endpoint around a synchronous `fn(request, body) -> Response` (the body read
    first, within the body limits; b"" for GET); domain errors become their status, a lost
    database 503, anything else 500 (logged). The docstring stays, for the OpenAPI description."""

    @functools.wraps(fn)
    async def endpoint(request: Request) -> Response:
        body = await request.body() if request.method in BODY_METHODS else b""
        try:
            return await run_in_threadpool(fn, request, body)
        except DomainError as exc:
            return errors(request.url.path, HTTP_STATUS.get(exc.code, 400), exc.code, exc.message)
        except (OperationalError, InterfaceError, PoolTimeout):  # the database is down, or the pool is exhausted
            log.exception("%s: database error", request.url.path)
            return errors(request.url.path, 503, "UNAVAILABLE", "the database is unavailable; retry later")

    return endpoint


def json_endpoint(fn: Callable[[Request], dict]):
    """threaded() for `fn(request) -> dict`, answered as JSON."""

    @functools.wraps(fn)
    def respond(request: Request, body: bytes) -> JSONResponse:
        return JSONResponse(jsonable(fn(request)))

    return threaded(respond)


class _BodyTooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


class BodyLimit:
    """413 for a body over the limit, 408 for one not complete in time (pure ASGI, so streamed
    bodies count as they arrive)."""

    def __init__(self, app, max_bytes: int, timeout: float, errors: ErrorRenderer):
        self.app, self.max_bytes, self.timeout, self.errors = app, max_bytes, timeout, errors

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")  # h11 lets only digits through
        if length is not None and int(length) > self.max_bytes:
            response = self.errors(scope["path"], 413, _HTTP_CODE[413], f"the body is limited to {self.max_bytes} bytes",
                                   {"Connection": "close"})
            return await response(scope, receive, send)
        deadline = asyncio.get_running_loop().time() + self.timeout
        received, complete = 0, False

        async def limited_receive():
            nonlocal received, complete
            if complete:  # the body is in; what follows is the client's disconnect, whenever it comes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except asyncio.TimeoutError:
                raise _BodyTimeout()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
                complete = not message.get("more_body", False)
            return message

        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except (_BodyTooLarge, _BodyTimeout) as exc:
            if started:
                raise
            status = 413 if isinstance(exc, _BodyTooLarge) else 408
            message = (f"the body is limited to {self.max_bytes} bytes" if status == 413 else
                       f"the body did not arrive within {self.timeout:g} seconds")
            await self.errors(scope["path"], status, _HTTP_CODE[status], message, {"Connection": "close"})(
                scope, receive, send)


class RateLimit:
    """429 with Retry-After past `rate` requests per client; the health check is exempt."""

    def __init__(self, app, rate: str, errors: ErrorRenderer):
        self.app, self.errors = app, errors
        self.item = limits.parse(rate)
        self.limiter = limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] == HEALTH_PATH:
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        if not self.limiter.hit(self.item, client):
            reset = self.limiter.get_window_stats(self.item, client).reset_time
            retry = max(1, math.ceil(reset - time.time()))
            response = self.errors(scope["path"], 429, "RATE_LIMITED",
                                   f"at most {self.item} per client; retry in {retry} s", {"Retry-After": str(retry)})
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(*, title: str, version: str, description: str, routes: list[Route], health: Callable[[], None],
               limits_: Limits, errors: ErrorRenderer = json_error, components: dict | None = None) -> Starlette:
    """A public app: the routes, /healthz, /openapi.json (with `components` for the routes'
    docstrings to refer to), typed errors, the body and rate limits."""
    base = {"openapi": "3.0.3", "info": {"title": title, "version": version, "description": description}}
    schemas = SchemaGenerator({**base, "components": components} if components else base)

    async def healthz(request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(health)
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "NOT_SERVING"}, status_code=503)
        return JSONResponse({"status": "SERVING"})

    def openapi(request: Request) -> JSONResponse:
        return JSONResponse(schemas.get_schema(routes=request.app.routes))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return errors(request.url.path, exc.status_code, _HTTP_CODE.get(exc.status_code, "HTTP_ERROR"), exc.detail,
                      exc.headers)

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return errors(request.url.path, 500, "INTERNAL", "internal error; it has been logged")

    app = Starlette(routes=[*routes, Route(HEALTH_PATH, healthz, include_in_schema=False),
                            Route("/openapi.json", openapi, include_in_schema=False)],
                    exception_handlers={HTTPException: http_error, Exception: internal_error})
    app.add_middleware(RateLimit, rate=limits_.rate, errors=errors)
    app.add_middleware(BodyLimit, max_bytes=limits_.max_body_bytes, timeout=limits_.body_timeout, errors=errors)
    return app


def _header_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete
    within `seconds` of it opening, or of the previous response on a kept-alive connection."""

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_timer()

        def connection_lost(self, exc) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(seconds, self._headers_late)

        def _headers_late(self) -> None:
            # IDLE: no complete request line and headers yet (h11 moves on once it has them).
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                log.info("%s: request headers not complete within %g s; closing", self.client, seconds)
                self.transport.close()

    return HeaderTimeoutProtocol


def serve(app: Starlette, port: int, limits_: Limits) -> None:
    """Runs the app until SIGTERM/SIGINT (uvicorn finishes the requests under way)."""
    uvicorn.run(app, host="0.0.0.0", port=port, http=_header_timeout_protocol(limits_.header_timeout),
                limit_concurrency=limits_.max_concurrency, timeout_keep_alive=limits_.keepalive_timeout,
                h11_max_incomplete_event_size=limits_.max_header_bytes, proxy_headers=True,
                forwarded_allow_ips=limits_.forwarded_allow_ips, server_header=False, timeout_graceful_shutdown=10,
                log_config=None)
