"""The officer's app's API (under /api/officer): its own session (cookie `gridbus_officer`,
grid officers only), photo uploads to the attachment store, reports through the incidents
service's idempotent intake, the officer's cases and actions, duty and position, and
(officer_alerts.py) emergency alerts. Every call to the services carries the officer's own token."""
from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.console import domain, officer_alerts, officer_domain as rules, signin, views
from services.console.attachments import http as attachment_http
from services.console.clients import ServiceError
from services.console.session import check_request_origin, clear_cookie, read_json, set_cookie
from services.incidents.domain import OPEN_STATUSES
from shared.errors import FailedPrecondition, InvalidArgument

APP = "officer"
CASES_PAGE = 200  # per grid: an officer's grid rarely has more open cases


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
        who = await signin.sign_in_officer(svc(), await read_json(request))
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
        try:
            await svc().sign_out(session.refresh_token)  # grid ends the session too
        except ServiceError:
            pass
        response = JSONResponse({"signed_out": True})
        clear_cookie(response, request, APP)
        return response

    async def tile(request, session):
        p = request.path_params
        mvt = await svc().tile(session.token, p["z"], p["x"], p["y"])
        return Response(mvt, media_type="application/vnd.mapbox-vector-tile",
                        headers={"Cache-Control": "private, max-age=300"})

    async def reference(request, session):
        categories = await svc().categories(session.token)
        return JSONResponse({"categories": [{**c, "names": domain.split_name(c["name"])} for c in categories]})

    async def report(request, session):
        """Sent from the phone's outbox; the same report_id again answers with the same incident."""
        incident, replayed = await svc().report(session.token, rules.parse_report(await read_json(request)))
        return JSONResponse({"incident": incident, "replayed": replayed}, status_code=200 if replayed else 201)

    async def cases(request, session):
        return JSONResponse(await day_lists(svc(), session))

    async def case(request, session):
        incident, history = await svc().incident(session.token, request.path_params["incident_id"])
        views.add_links(incident, history, photos.link)  # having read the case, the officer may see its photos
        return JSONResponse({"incident": incident, "history": history})

    async def act(request, session):
        p = request.path_params
        form = rules.parse_case_action(p["action"], await read_json(request))
        incident = await svc().transition(session.token, p["incident_id"], p["action"], form["version"],
                                          note=rules.note_with_photos(form["note"], form["photos"]))
        return JSONResponse({"incident": incident})

    async def duty(request, session):
        body = await read_json(request)
        if not isinstance(body.get("on_duty"), bool):
            raise InvalidArgument("on_duty must be true or false")
        member = await svc().update_member(session.token, session.principal.member_id, on_duty=body["on_duty"])
        return JSONResponse({"member": member})

    async def position(request, session):
        """Only while on duty: the app stops sending when the officer goes off duty, and a position
        that arrives after that is refused here rather than stored."""
        lon, lat = rules.parse_position(await read_json(request))
        member = await svc().member(session.token, session.principal.member_id)
        if not member["on_duty"]:
            raise FailedPrecondition("you are off duty: positions are reported only on duty")
        return JSONResponse(await svc().report_position(session.token, session.principal.member_id, lon, lat))

    def officer(handler, **kw):
        return api(handler, app=APP, **kw)

    return [
        Route("/api/officer/session", officer(sign_in, signed_in=False), methods=["POST"]),
        Route("/api/officer/session", officer(whoami), methods=["GET"]),
        Route("/api/officer/session", officer(sign_out), methods=["DELETE"]),
        Route("/api/officer/reference", officer(reference)),
        Route("/api/officer/tiles/{z:int}/{x:int}/{y:int}.pbf", officer(tile)),
        Route("/api/officer/reports", officer(report), methods=["POST"]),
        Route("/api/officer/cases", officer(cases)),
        Route("/api/officer/cases/{incident_id}", officer(case)),
        Route("/api/officer/cases/{incident_id}/{action}", officer(act), methods=["POST"]),
        Route("/api/officer/duty", officer(duty), methods=["PUT"]),
        Route("/api/officer/position", officer(position), methods=["POST"]),
        Route(UPLOAD_PATH, officer(attachment_http.upload_handler(photos), body_types=attachment_http.UPLOAD_TYPES),
              methods=["POST"]),
        *officer_alerts.routes(officer, sessions, svc),
    ]


UPLOAD_PATH = "/api/officer/attachments"


async def day_lists(svc, session) -> dict:
    """The officer's cases in their grids, by list: to verify, sent back for rework, open."""
    statuses = sorted(OPEN_STATUSES | {"rejected"})
    pages = await asyncio.gather(*(svc.incidents_page(session.token, unit=code, statuses=statuses,
                                                      page_size=CASES_PAGE) for code in session.principal.scope))
    out: dict[str, list] = {name: [] for name in rules.LISTS}
    seen = set()
    for incidents, _ in pages:
        for incident in incidents:
            which = rules.list_of(incident, session.principal.member_id)
            if which and incident["id"] not in seen:
                seen.add(incident["id"])
                out[which].append(incident)
    return out
