"""Public HTTP endpoints: unauthenticated JSON reads on Starlette under uvicorn, with what every
public endpoint needs written once.

- A body larger than `max_body_bytes`: 413, from its Content-Length or counted as it arrives;
  a body that stalls longer than `body_timeout` between chunks: 408.
- More than `rate` requests from one client: 429 with Retry-After (the `limits` library, a
  moving window in memory, so per process). The client is the peer's address, or the
  X-Forwarded-For of a proxy listed in `forwarded_allow_ips` (uvicorn's proxy headers).
- More than `max_concurrency` connections and requests at once: 503 (uvicorn's limit_concurrency).
- Headers larger than `max_header_bytes` are refused by uvicorn (h11); idle keep-alive
  connections close after `keepalive_timeout`. A client slow to send its headers is for the
  proxy in front to cut off: uvicorn has no header timeout.
- Domain errors become typed JSON with their HTTP status:
  `{"error": {"code": "NOT_FOUND", "message": "..."}}`; so do 404/405 and the limits above.
- GET /healthz (200, or 503 when the health check raises) and GET /openapi.json, built from
  the endpoints' docstrings (the YAML after `---`).

Endpoints are plain functions `(request) -> dict` run in a worker thread (they call the
services' synchronous operations); build the app with create_app and run it with serve."""
from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable

import limits
import uvicorn
from sqlalchemy.exc import DBAPIError, TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

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


@dataclass(frozen=True)
class Limits:
    rate: str = "60/minute"
    max_body_bytes: int = 16 * 1024
    body_timeout: float = 10.0
    max_concurrency: int = 64
    max_header_bytes: int = 16 * 1024
    keepalive_timeout: int = 5
    forwarded_allow_ips: str = "127.0.0.1"

    @classmethod
    def from_settings(cls, s: Settings | None = None) -> "Limits":
        s = s or settings()
        return cls(rate=s.public_rate_limit, max_concurrency=s.public_max_concurrency,
                   forwarded_allow_ips=s.public_forwarded_allow_ips)


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
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


def json_endpoint(fn: Callable[[Request], dict]):
    """An async endpoint around a synchronous `fn(request) -> dict`; domain errors become their
    status, a lost database 503. The docstring stays, for the OpenAPI description."""

    @functools.wraps(fn)
    async def endpoint(request: Request) -> JSONResponse:
        try:
            return JSONResponse(jsonable(await run_in_threadpool(fn, request)))
        except DomainError as exc:
            return error_response(HTTP_STATUS.get(exc.code, 400), exc.code, exc.message)
        except (DBAPIError, PoolTimeout):  # the database is down, or every pooled connection is busy
            log.exception("%s: database error", request.url.path)
            return error_response(503, "UNAVAILABLE", "the database is unavailable; retry later")

    return endpoint


class _BodyTooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


class BodyLimit:
    """413 for a body over the limit, 408 for one that stalls (pure ASGI, so streamed bodies count)."""

    def __init__(self, app, max_bytes: int, timeout: float):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(413, f"the body is limited to {self.max_bytes} bytes", scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except asyncio.TimeoutError:
                raise _BodyTimeout()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
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
            await error_response(status, _HTTP_CODE[status], message)(scope, receive, send)

    @staticmethod
    async def _refuse(status, message, scope, receive, send):
        await error_response(status, _HTTP_CODE[status], message, {"Connection": "close"})(scope, receive, send)


class RateLimit:
    """429 with Retry-After past `rate` requests per client; the health check is exempt."""

    def __init__(self, app, rate: str):
        self.app = app
        self.item = limits.parse(rate)
        self.limiter = limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] == HEALTH_PATH:
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        if not self.limiter.hit(self.item, client):
            reset = self.limiter.get_window_stats(self.item, client).reset_time
            retry = max(1, math.ceil(reset - time.time()))
            response = error_response(429, "RATE_LIMITED", f"at most {self.item} per client; retry in {retry} s",
                                      {"Retry-After": str(retry)})
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(*, title: str, version: str, description: str, routes: list[Route], health: Callable[[], None],
               limits_: Limits) -> Starlette:
    """A public app: the routes, /healthz, /openapi.json, typed errors, the body and rate limits."""
    schemas = SchemaGenerator({"openapi": "3.0.3", "info": {"title": title, "version": version,
                                                            "description": description}})

    async def healthz(request: Request) -> JSONResponse:
        try:
            await run_in_threadpool(health)
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "NOT_SERVING"}, status_code=503)
        return JSONResponse({"status": "SERVING"})

    def openapi(request: Request) -> JSONResponse:
        return JSONResponse(schemas.get_schema(routes=request.app.routes))

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, _HTTP_CODE.get(exc.status_code, "HTTP_ERROR"), exc.detail)

    app = Starlette(routes=[*routes, Route(HEALTH_PATH, healthz, include_in_schema=False),
                            Route("/openapi.json", openapi, include_in_schema=False)],
                    exception_handlers={HTTPException: http_error})
    app.add_middleware(RateLimit, rate=limits_.rate)
    app.add_middleware(BodyLimit, max_bytes=limits_.max_body_bytes, timeout=limits_.body_timeout)
    return app


def serve(app: Starlette, port: int, limits_: Limits) -> None:
    """Runs the app until SIGTERM/SIGINT (uvicorn finishes the requests under way)."""
    uvicorn.run(app, host="0.0.0.0", port=port, limit_concurrency=limits_.max_concurrency,
                timeout_keep_alive=limits_.keepalive_timeout, h11_max_incomplete_event_size=limits_.max_header_bytes,
                proxy_headers=True, forwarded_allow_ips=limits_.forwarded_allow_ips, server_header=False,
                timeout_graceful_shutdown=10, log_config=None)
