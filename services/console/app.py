"""The console's web app (Starlette): the page, and the small JSON and server-sent-events API
it uses. Thin: sessions in session.py, what each call does in views.py, the gRPC calls in
clients.py. Errors are JSON `{"error": {"code", "message"}}` with the service's status, as
shared/public_http.py maps them; its body limit refuses a body past 16 KiB (413) or one that
stalls (408)."""
from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from services.console import attachments, domain, officer, signin, store, views
from services.console.attachments import http as attachment_http
from services.console.clients import ServiceError, Services
from services.console.live import Hub
from services.console.session import JSON, Sessions, check_request_origin, clear_cookie, current, read_json as _json, set_cookie
from shared.config import Settings, settings
from shared.db import session_scope
from shared.errors import DomainError, InvalidArgument, NotFound
from shared.public_http import HTTP_STATUS, BodyLimit, json_error

WEB_DIST = Path(__file__).resolve().parent / "web" / "dist"
PING_SECONDS = 15
ALIVE_CHECK_SECONDS = 2.5  # a quiet stream looks this often whether its session was revoked
# A sign-in token, an action's reasons or a saved filter: small JSON bodies, sent at once.
MAX_BODY_BYTES = 16 * 1024
BODY_TIMEOUT_S = 10.0
PAGES = ("/", "/map", "/queue", "/figures", "/wall", "/signin")
# The officer's app's own files (the rest of /officer/ is its page).
OFFICER_FILES = {"sw.js": "text/javascript", "manifest.webmanifest": "application/manifest+json",
                 "icon-192.png": "image/png", "icon-512.png": "image/png"}


def _error(request: Request, code: str, message: str) -> JSONResponse:
    """A refusal as JSON with its HTTP status; a status the table does not know is the service's
    failure (502)."""
    return json_error(request.url.path, HTTP_STATUS.get(code, 502), code, message)


def _origin(url: str) -> str:
    parts = urlsplit(url.replace("{", "").replace("}", ""))
    return f" {parts.scheme}://{parts.netloc}"


def _content_security_policy(tile_url: str | None, photo_url: str | None = None) -> str:
    tiles = _origin(tile_url) if tile_url else ""
    photos = _origin(photo_url) if photo_url else ""  # the object store's signed links
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob:{tiles}{photos}; connect-src 'self'{tiles}; worker-src 'self' blob:; "
            "font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def create_app(s: Settings | None = None) -> Starlette:
    s = s or settings()
    sessions = Sessions()
    state: dict = {}
    photos = attachments.open_store(s)
    photo_origin = None
    if s.attachment_s3_bucket:
        photo_origin = s.attachment_s3_endpoint or f"https://{s.attachment_s3_bucket}.s3.amazonaws.com"
    csp = _content_security_policy(s.console_tile_url, photo_origin)

    def api(handler, *, signed_in: bool = True, app: str = "console", body_types: tuple[str, ...] = JSON):
        """Wraps a handler `(request, session)`: the app's session (CSRF on changes) and errors as JSON."""
        async def endpoint(request: Request) -> Response:
            session = None
            try:
                session = current(sessions, request, app, body_types) if signed_in else None
                if session is not None and session.needs_refresh:
                    await renew(session)
                return await handler(request, session)
            except ServiceError as exc:
                if exc.code == "UNAUTHENTICATED" and session is not None:
                    sessions.end(session)  # the services no longer take its token (expired, new key)
                return _error(request, exc.code, exc.message)
            except DomainError as exc:
                return _error(request, exc.code, exc.message)
        return endpoint

    def svc() -> Services:
        return state["services"]

    async def renew(session) -> None:
        """A fresh access token for the session from its refresh token (one renewal at a time);
        a refusal (UNAUTHENTICATED: revoked, ended, reused) ends the session in `api`."""
        async with session.refreshing:
            if session.needs_refresh:
                session.renew(signin.from_answer(await svc().refresh(session.refresh_token)))

    async def end_session(session) -> None:
        """Sign-out: grid ends the refresh token's session too (best effort: the cookie dies anyway)."""
        sessions.end(session)
        try:
            await svc().sign_out(session.refresh_token)
        except ServiceError:
            pass

    # --- session

    async def config(request, _):
        return JSONResponse({"signin": {"fields": list(signin.FIELDS)}, "tile_url": s.console_tile_url,
                             "time_zone": s.console_time_zone})

    async def sign_in(request, _):
        check_request_origin(request)
        who = await signin.sign_in(svc(), await _json(request))
        session, cookie = sessions.start(who)
        try:
            body = await views.me(svc(), session)
        except ServiceError:
            sessions.end(session)
            raise
        response = JSONResponse(body)
        set_cookie(response, request, cookie, session.expires_at)
        return response

    async def whoami(request, session):
        return JSONResponse(await views.me(svc(), session))

    async def sign_out(request, session):
        await end_session(session)
        response = JSONResponse({"signed_out": True})
        clear_cookie(response, request)
        return response

    # --- reading

    async def reference(request, session):
        return JSONResponse(await views.reference(svc(), session))

    async def tile(request, session):
        p = request.path_params
        mvt = await svc().tile(session.token, p["z"], p["x"], p["y"])
        return Response(mvt, media_type="application/vnd.mapbox-vector-tile",
                        headers={"Cache-Control": "private, max-age=300"})

    async def incidents(request, session):
        f = domain.parse_filter(request.query_params)
        return JSONResponse(await views.queue(svc(), session, f, datetime.now(timezone.utc)))

    async def incident(request, session):
        return JSONResponse(await views.case(svc(), session, request.path_params["incident_id"], photos.link))

    async def officers(request, session):
        return JSONResponse({"officers": await views.officers(svc(), session)})

    async def unit(request, session):
        return JSONResponse(await views.unit(svc(), session, request.path_params["code"]))

    async def children(request, session):
        return JSONResponse({"units": await svc().children(session.token, request.path_params["code"])})

    async def figures(request, session):
        code = request.query_params.get("unit") or session.principal.scope[0]
        return JSONResponse(await views.figures(svc(), session, code, s.console_time_zone, datetime.now(timezone.utc)))

    # --- acting

    async def act(request, session):
        p = request.path_params
        await views.act(svc(), session, p["incident_id"], p["action"], await _json(request))
        return JSONResponse({"done": p["action"]})

    # --- saved filters (the console's own table)

    async def list_filters(request, session):
        member = session.principal.member_id
        return JSONResponse({"filters": await run_in_threadpool(_in_db, store.saved_filters, member)})

    async def save_filter(request, session):
        body = await _json(request)
        name, doc = domain.check_saved_filter(request.path_params["name"], body.get("filter"))
        member = session.principal.member_id

        def save(db):
            if store.count_filters(db, member) >= store.MAX_SAVED:
                raise InvalidArgument(f"at most {store.MAX_SAVED} saved filters; delete one first")
            store.save_filter(db, member, name, doc)
        await run_in_threadpool(_in_db, save)
        return JSONResponse({"name": name, "filter": doc})

    async def delete_filter(request, session):
        name = request.path_params["name"]
        if not await run_in_threadpool(_in_db, store.delete_filter, session.principal.member_id, name):
            raise NotFound(f"no saved filter {name!r}")
        return JSONResponse({"deleted": name})

    # --- live

    async def events(request, session):
        listener = state["hub"].listen(session)

        async def stream():
            try:
                yield f"retry: 3000\nevent: hello\ndata: {json.dumps({'member_id': session.principal.member_id})}\n\n"
                quiet = 0.0
                while not listener.closed and session.alive:  # alive: not expired, not revoked
                    try:
                        text = await asyncio.wait_for(listener.queue.get(), ALIVE_CHECK_SECONDS)
                    except asyncio.TimeoutError:
                        quiet += ALIVE_CHECK_SECONDS
                        if quiet >= PING_SECONDS:
                            quiet = 0.0
                            yield ": ping\n\n"
                        continue
                    if text is None:
                        break
                    yield f"data: {text}\n\n"
            finally:
                state["hub"].forget(listener)
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # --- the page

    async def page(request: Request) -> Response:
        index = WEB_DIST / "index.html"
        if not index.exists():
            return Response("the console's page is not built: run `make web`", status_code=503)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    async def officer_page(request: Request) -> Response:
        """The officer's app: its own files under /officer/ (service worker, manifest, icons), and
        its page for every other path there (the app routes itself)."""
        name = request.path_params.get("rest", "")
        if name in OFFICER_FILES:
            path = WEB_DIST / "officer" / name
            if path.is_file():
                headers = {"Cache-Control": "no-cache"}
                if name == "sw.js":
                    headers["Service-Worker-Allowed"] = "/officer/"
                return FileResponse(path, media_type=OFFICER_FILES[name], headers=headers)
        index = WEB_DIST / "officer.html"
        if not index.exists():
            return Response("the officer's app is not built: run `make web`", status_code=503)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "SERVING"})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["services"] = Services(s)
        hub = state["hub"] = Hub(s.amqp_uri)
        sessions.on_end(hub.session_ended)
        await asyncio.get_running_loop().run_in_executor(None, hub.start, asyncio.get_running_loop())
        try:
            yield
        finally:
            hub.stop()
            await state["services"].close()

    routes = [
        Route("/healthz", health),
        Route("/api/config", api(config, signed_in=False)),
        Route("/api/session", api(sign_in, signed_in=False), methods=["POST"]),
        Route("/api/session", api(whoami), methods=["GET"]),
        Route("/api/session", api(sign_out), methods=["DELETE"]),
        Route("/api/reference", api(reference)),
        Route("/api/tiles/{z:int}/{x:int}/{y:int}.pbf", api(tile)),
        Route("/api/incidents", api(incidents)),
        Route("/api/incidents/{incident_id}", api(incident)),
        Route("/api/incidents/{incident_id}/actions/{action}", api(act), methods=["POST"]),
        Route("/api/officers", api(officers)),
        Route("/api/units/{code}", api(unit)),
        Route("/api/units/{code}/children", api(children)),
        Route("/api/figures", api(figures)),
        Route("/api/filters", api(list_filters)),
        Route("/api/filters/{name}", api(save_filter), methods=["PUT"]),
        Route("/api/filters/{name}", api(delete_filter), methods=["DELETE"]),
        Route("/api/events", api(events)),
        *officer.routes(api, sessions, svc, photos),
        Route("/attachments/{name}", api(attachment_http.view_handler(photos), signed_in=False)),
        *(Route(path, page) for path in PAGES),
        Route("/case/{incident_id}", page),
        Route("/officer", lambda request: RedirectResponse("/officer/", status_code=308)),
        Route("/officer/{rest:path}", officer_page),
    ]
    if (WEB_DIST / "assets").is_dir():
        routes.append(Mount("/assets", StaticFiles(directory=WEB_DIST / "assets"), name="assets"))
    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(SecurityHeaders, csp=csp), Middleware(GZipMiddleware, minimum_size=1024),
                                 Middleware(BodyLimits, uploads=UPLOAD_PATHS, upload_bytes=s.attachment_max_bytes)])


UPLOAD_PATHS = (officer.UPLOAD_PATH,)


class BodyLimits:
    """The body limits: photos on the upload paths, small JSON everywhere else."""

    def __init__(self, app, uploads: tuple[str, ...], upload_bytes: int):
        self.uploads = uploads
        self.small = BodyLimit(app, max_bytes=MAX_BODY_BYTES, timeout=BODY_TIMEOUT_S, errors=json_error)
        self.photos = BodyLimit(app, max_bytes=upload_bytes, timeout=attachment_http.UPLOAD_TIMEOUT_S,
                                errors=json_error)

    async def __call__(self, scope, receive, send):
        limit = self.photos if scope["type"] == "http" and scope["path"] in self.uploads else self.small
        await limit(scope, receive, send)


class SecurityHeaders:
    """ASGI middleware: the page's content security policy and friends on every response;
    the hashed assets cached for good."""

    def __init__(self, app, csp: str):
        self.app, self.csp = app, csp

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        immutable = scope["path"].startswith("/assets/")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", self.csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if immutable:
                    headers["Cache-Control"] = "public, max-age=31536000, immutable"
            await send(message)
        await self.app(scope, receive, with_headers)


def _in_db(fn, *args):
    with session_scope() as db:
        return fn(db, *args)
