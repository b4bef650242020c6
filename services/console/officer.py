"""The officer's app's API (under /api/officer): its own session (cookie `gridbus_officer`,
grid officers only), photo uploads to the attachment store, and (officer_views.py) reports
through the incidents service's idempotent intake, the officer's cases and actions, duty and
position. Every call to the services carries the officer's own token."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.console import signin, views
from services.console.attachments import http as attachment_http
from services.console.clients import ServiceError
from services.console.session import check_request_origin, clear_cookie, read_json, set_cookie

APP = "officer"


async def me(svc, session) -> dict:
    """Who is signed in, their grids (with outlines' boxes) and their member record when it exists."""
    body = await views.me(svc, session)
    try:
        body["member"] = await svc.member(session.token, session.principal.member_id)
    except ServiceError as exc:
        if exc.code not in ("NOT_FOUND", "INVALID_ARGUMENT", "PERMISSION_DENIED"):
            raise
        body["member"] = None  # a token minted for no stored member (development)
    return body


def routes(api, sessions, svc, photos) -> list[Route]:
    """`api(handler, app=..., ...)` wraps handlers as app.py does; `svc()` gives the services."""

    async def sign_in(request: Request, _):
        check_request_origin(request)
        who = signin.sign_in_officer(await read_json(request))
        session, cookie = sessions.start(who, APP)
        try:
            body = await me(svc(), session)
        except ServiceError:
            sessions.end(session)
            raise
        response = JSONResponse(body)
        set_cookie(response, request, cookie, session.expires_at, APP)
        return response

    async def whoami(request, session):
        return JSONResponse(await me(svc(), session))

    async def sign_out(request, session):
        sessions.end(session)
        response = JSONResponse({"signed_out": True})
        clear_cookie(response, request, APP)
        return response

    def officer(handler, **kw):
        return api(handler, app=APP, **kw)

    return [
        Route("/api/officer/session", officer(sign_in, signed_in=False), methods=["POST"]),
        Route("/api/officer/session", officer(whoami), methods=["GET"]),
        Route("/api/officer/session", officer(sign_out), methods=["DELETE"]),
        Route(UPLOAD_PATH, officer(attachment_http.upload_handler(photos), body_types=attachment_http.UPLOAD_TYPES),
              methods=["POST"]),
    ]


UPLOAD_PATH = "/api/officer/attachments"
