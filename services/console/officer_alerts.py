"""The officer's emergency alerts (under /api/officer/alerts): the console holds the officer's
WatchAlerts stream with their own token and passes it on to the phone as server-sent events;
accept, decline and an alert's state go to the emergencies service, which decides who may answer
(only the officers it reached) and who was first. The phone is shown only its own part of an alert
(officer_domain.alert_for)."""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict

import grpc
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from services.console import officer_domain as rules
from services.console.clients import ServiceError, notice_json
from services.console.session import read_json

PING_SECONDS = 15


class Streams:
    """The open alert streams by session, so that signing out (from any thread) ends them."""

    def __init__(self):
        self._ending: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self, session_id: str) -> asyncio.Event:
        self._loop = asyncio.get_running_loop()
        ending = asyncio.Event()
        self._ending[session_id].add(ending)
        return ending

    def close(self, session_id: str, ending: asyncio.Event) -> None:
        self._ending[session_id].discard(ending)
        if not self._ending[session_id]:
            del self._ending[session_id]

    def session_ended(self, session) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._end, session.id)

    def _end(self, session_id: str) -> None:
        for ending in self._ending.get(session_id, ()):
            ending.set()


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def routes(officer, sessions, svc) -> list[Route]:
    """`officer(handler, ...)` wraps a handler with the officer's session (officer.py)."""
    streams = Streams()
    sessions.on_end(streams.session_ended)

    async def stream(request, session):
        """The officer's alerts as they happen: `ready` once bound (every alert from then on
        comes), then an `alert` event for each one sent, taken or withdrawn; `failed` when the
        emergencies service refuses or goes away (the phone connects again)."""
        return StreamingResponse(events(session), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def events(session):
        # The gRPC stream opens inside the generator, so whatever ends the response (the phone
        # gone, sign-out, the service) also ends the stream it holds on the emergencies server.
        me = session.principal.member_id
        try:
            call = await svc().watch_alerts(session.token)
        except ServiceError as exc:
            if exc.code == "UNAUTHENTICATED":
                sessions.end(session)  # the services no longer take its token
            yield _event("failed", {"code": exc.code})
            return
        ending = streams.open(session.id)
        reading = asyncio.ensure_future(call.read())
        ended = asyncio.ensure_future(ending.wait())
        try:
            yield "retry: 3000\n" + _event("ready", {"member_id": me})
            while session.alive:
                done, _ = await asyncio.wait({reading, ended}, timeout=PING_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                if ended in done:
                    break
                if not done:
                    yield ": ping\n\n"
                    continue
                notice = reading.result()
                if notice is grpc.aio.EOF:
                    break
                alert = rules.alert_from_notice(me, notice_json(notice))
                if alert is not None:
                    yield _event("alert", alert)
                reading = asyncio.ensure_future(call.read())
        except grpc.aio.AioRpcError as exc:  # the service went away: the phone connects again
            yield _event("failed", {"code": exc.code().name})
        finally:
            streams.close(session.id, ending)
            call.cancel()
            for task in (reading, ended):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def alert(request, session):
        found = await svc().alert(session.token, request.path_params["alert_id"])
        return JSONResponse({"alert": rules.alert_for(session.principal.member_id, found)})

    async def accept(request, session):
        """First accept wins: a later one is 409 (FAILED_PRECONDITION) naming who took it."""
        taken = await svc().answer_alert(session.token, request.path_params["alert_id"], True)
        return JSONResponse({"alert": rules.alert_for(session.principal.member_id, taken)})

    async def decline(request, session):
        reason = rules.parse_decline(await read_json(request))
        declined = await svc().answer_alert(session.token, request.path_params["alert_id"], False, reason)
        return JSONResponse({"alert": rules.alert_for(session.principal.member_id, declined)})

    return [
        Route("/api/officer/alerts/stream", officer(stream)),
        Route("/api/officer/alerts/{alert_id}", officer(alert)),
        Route("/api/officer/alerts/{alert_id}/accept", officer(accept), methods=["POST"]),
        Route("/api/officer/alerts/{alert_id}/decline", officer(decline), methods=["POST"]),
    ]

