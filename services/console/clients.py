"""The console's calls to the services' gRPC APIs, always with the signed-in member's own token,
so every permission is the one the services enforce. Answers come back as plain JSON-ready
dicts; a refusal is a ServiceError carrying the gRPC status name and the service's message."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from gridbus.dispatch.v1 import dispatch_pb2 as dpb
from gridbus.dispatch.v1 import dispatch_pb2_grpc
from gridbus.emergencies.v1 import emergencies_pb2 as epb
from gridbus.emergencies.v1 import emergencies_pb2_grpc
from gridbus.grid.v1 import grid_pb2 as gpb
from gridbus.grid.v1 import grid_pb2_grpc
from gridbus.incidents.v1 import incidents_pb2 as ipb
from gridbus.incidents.v1 import incidents_pb2_grpc
from services import registry
from shared import tls
from shared.config import Settings
from shared.grpc_support import timestamp
from shared.timefmt import iso_utc

TIMEOUT_S = 10.0
MEMBERS_PAGE = 500
INCIDENTS_PAGE = 200

_LEVEL = {v: k.removeprefix("LEVEL_").lower() for k, v in gpb.Level.items()}
_ROLE = {v: k.removeprefix("ROLE_").lower() for k, v in gpb.Role.items()}
_STATUS = {v: k.removeprefix("STATUS_").lower() for k, v in ipb.Status.items()}
STATUS_PB = {name: value for value, name in _STATUS.items() if name != "unspecified"}
ACTION_PB = {k.removeprefix("ACTION_").lower(): v for k, v in ipb.Action.items()}


class ServiceError(Exception):
    """A service refused or failed: `code` is the gRPC status name (PERMISSION_DENIED, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def _time(ts: Timestamp, present: bool = True) -> str | None:
    if not present or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return iso_utc(ts.ToDatetime(tzinfo=timezone.utc))


# --- protos to JSON ----------------------------------------------------------------------------

def unit_json(u: gpb.Unit) -> dict:
    return {"code": u.code, "level": _LEVEL[u.level], "name": u.name, "parent_code": u.parent_code or None,
            "ancestors": list(u.ancestor_codes), "area_m2": u.area_m2}


def member_json(m: gpb.Member) -> dict:
    primary = next((a.grid_code for a in m.assignments if a.primary), None)
    position = None
    if m.HasField("last_position"):
        p = m.last_position
        position = {"lon": p.lon, "lat": p.lat, "reported_at": _time(p.reported_at)}
    return {"id": m.id, "name": m.name, "phone": m.phone, "role": _ROLE[m.role], "on_duty": m.on_duty,
            "active": m.active, "grid_code": primary, "grids": [a.grid_code for a in m.assignments],
            "position": position}


def incident_json(i: ipb.Incident) -> dict:
    return {
        "id": i.id, "title": i.title, "description": i.description, "category_code": i.category_code,
        "status": _STATUS[i.status], "version": i.version, "priority": i.priority,
        "lon": i.location.lon, "lat": i.location.lat, "accuracy_m": i.location.accuracy_m,
        "occurred_at": _time(i.occurred_at), "reported_at": _time(i.reported_at),
        "updated_at": _time(i.updated_at), "reporter_id": i.reporter_id, "grid_code": i.grid_code,
        "lineage": list(i.lineage), "department_code": i.department_code or None,
        "duplicate_of": i.duplicate_of or None,
        "subject": {"type": i.subject.type, "ref": i.subject.ref} if i.subject.type else None,
        "attachments": [{"sha256": a.sha256, "size_bytes": a.size_bytes, "media_type": a.media_type, "uri": a.uri}
                        for a in i.attachments],
        "violation_confirmed": i.violation_confirmed,
        "pending": i.pending or None, "review_at": _time(i.review_at, i.HasField("review_at")),
        "supervised": i.supervised,
    }


def history_json(h: ipb.HistoryEntry) -> dict:
    return {"version": h.version, "action": h.action, "from_status": _STATUS[h.from_status] if h.from_status else None,
            "to_status": _STATUS[h.to_status], "actor_id": h.actor_id, "actor_role": h.actor_role,
            "note": h.note or None, "department_code": h.department_code or None, "at": _time(h.at)}


def task_json(t: dpb.Task) -> dict:
    times = ("dispatched_at", "ack_due_at", "acknowledged_at", "resolve_due_at", "resolved_at", "closed_at",
             "next_due_at")
    return {"id": t.id, "incident_id": t.incident_id, "status": t.status, "department_code": t.department_code or None,
            "rule_id": t.rule_id or None, "category": t.category, "priority": t.priority, "grid_code": t.grid_code,
            "lineage": list(t.lineage), "reopened": t.reopened, "escalation_level": t.escalation_level,
            "escalated_to": t.escalated_to or None, "version": t.version,
            "pending": t.pending or None, "pending_minutes": t.pending_minutes or None, "clock_paused": t.clock_paused,
            "holds": list(t.holds), "paused_minutes": t.paused_minutes, "extended_minutes": t.extended_minutes,
            "returned": t.returned, "supervised": t.supervised,
            **{name: _time(getattr(t, name), t.HasField(name)) for name in times},
            "history": [{"action": h.action, "from_status": h.from_status or None, "to_status": h.to_status,
                         "department_code": h.department_code or None, "actor_id": h.actor_id,
                         "actor_role": h.actor_role, "note": h.note or None, "at": _time(h.at)}
                        for h in t.history]}


def alert_json(a: epb.Alert) -> dict:
    return {"id": a.id, "incident_id": a.incident_id, "category": a.category, "title": a.title, "lon": a.lon,
            "lat": a.lat, "stage": a.stage, "status": a.status, "deadline": _time(a.deadline, a.HasField("deadline")),
            "opened_at": _time(a.opened_at), "accepted_by": a.accepted_by or None,
            "accepted_by_name": a.accepted_by_name or None,
            "recipients": [{"member_id": r.member_id, "stage": r.stage, "distance_m": r.distance_m,
                            "answer": r.answer or None, "reason": r.reason or None} for r in a.recipients]}


def notice_json(n: epb.AlertNotice) -> dict:
    return {"type": n.type, "alert_id": n.alert_id, "incident_id": n.incident_id, "category": n.category,
            "title": n.title, "lon": n.lon, "lat": n.lat, "stage": n.stage, "distance_m": n.distance_m,
            "accepted_by": n.accepted_by or None, "accepted_by_name": n.accepted_by_name or None,
            "reason": n.reason or None}


def department_json(d: dpb.Department) -> dict:
    return {"code": d.code, "name": d.name, "serves": list(d.serves), "contact": d.contact, "active": d.active}


def evaluation_json(r: dpb.EvaluationRow) -> dict:
    return {"key": r.key, "dispatched": r.dispatched, "acknowledged_on_time": r.acknowledged_on_time,
            "resolved_on_time": r.resolved_on_time, "closure_rate": r.closure_rate,
            "on_time_closure_rate": r.on_time_closure_rate, "rework_rate": r.rework_rate,
            "mean_hours_to_resolve": r.mean_hours_to_resolve, "voided": r.voided, "parked": r.parked,
            "returned": r.returned, "return_rate": r.return_rate, "supervised": r.supervised, "extended": r.extended,
            "paused_hours": r.paused_hours, "index": r.index}


# --- the services ------------------------------------------------------------------------------

def target(service: str, setting: str | None) -> str:
    """Where a service's gRPC API is: its setting, or this host on the service's port."""
    return setting or f"127.0.0.1:{registry.port(service)}"


class Services:
    """One channel per service for the console's life; every call names whose token it carries."""

    def __init__(self, s: Settings):
        self._channels = [tls.aio_channel(target(name, setting), s) for name, setting in
                          (("grid", s.grid_grpc_target), ("incidents", s.incidents_grpc_target),
                           ("dispatch", s.dispatch_grpc_target), ("emergencies", s.emergencies_grpc_target))]
        grid, incidents, dispatch, emergencies = self._channels
        self.grid = grid_pb2_grpc.GridServiceStub(grid)
        self.incidents = incidents_pb2_grpc.IncidentServiceStub(incidents)
        self.dispatch = dispatch_pb2_grpc.DispatchServiceStub(dispatch)
        self.emergencies = emergencies_pb2_grpc.EmergencyServiceStub(emergencies)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._channels))

    @staticmethod
    async def _call(method, request, token: str | None):
        """`token` None: a call that needs none (sign-in)."""
        try:
            metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
            return await method(request, metadata=metadata, timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ServiceError("UNAVAILABLE", "the service did not answer in time; try again") from None
            raise ServiceError(code.name, exc.details() or "") from None

    # --- grid: sign-in (signin.py reads the answers)

    async def sign_in(self, login: str, password: str) -> gpb.SignInResponse:
        return await self._call(self.grid.SignIn, gpb.SignInRequest(login=login, password=password), None)

    async def refresh(self, refresh_token: str) -> gpb.SignInResponse:
        return await self._call(self.grid.Refresh, gpb.RefreshRequest(refresh_token=refresh_token), None)

    async def sign_out(self, refresh_token: str | None) -> None:
        if refresh_token:
            await self._call(self.grid.SignOut, gpb.SignOutRequest(refresh_token=refresh_token), None)

    # --- grid

    async def unit(self, token: str, code: str, geometry: bool = False) -> tuple[dict, str]:
        u = await self._call(self.grid.GetUnit, gpb.GetUnitRequest(code=code, include_geometry=geometry), token)
        return unit_json(u), u.geometry_geojson

    async def children(self, token: str, code: str) -> list[dict]:
        reply = await self._call(self.grid.ListChildren, gpb.ListChildrenRequest(code=code), token)
        return [unit_json(u) for u in reply.units]

    async def tile(self, token: str, z: int, x: int, y: int) -> bytes:
        return (await self._call(self.grid.GetTile, gpb.GetTileRequest(z=z, x=x, y=y), token)).mvt

    async def member(self, token: str, member_id: str) -> dict:
        return member_json(await self._call(self.grid.GetMember, gpb.GetMemberRequest(id=member_id), token))

    async def officers(self, token: str, root: str, on_duty_only: bool = True) -> list[dict]:
        """Every officer assigned in the subtree (on duty only, by default), all pages."""
        out, page = [], ""
        while True:
            reply = await self._call(self.grid.ListMembers, gpb.ListMembersRequest(
                grid_code=root, role=gpb.ROLE_OFFICER, on_duty_only=on_duty_only, page_size=MEMBERS_PAGE,
                page_token=page), token)
            out += [member_json(m) for m in reply.members]
            page = reply.next_page_token
            if not page:
                return out

    # --- emergencies (the officer's alerts)

    async def alert(self, token: str, alert_id: str) -> dict:
        return alert_json(await self._call(self.emergencies.GetAlert, epb.GetAlertRequest(alert_id=alert_id), token))

    async def answer_alert(self, token: str, alert_id: str, accept: bool, reason: str = "") -> dict:
        method = self.emergencies.Accept if accept else self.emergencies.Decline
        return alert_json(await self._call(method, epb.AnswerRequest(alert_id=alert_id, reason=reason), token))

    async def watch_alerts(self, token: str):
        """The officer's alert stream, once the service has bound it (every alert from then on
        reaches it); read it with `await call.read()` until grpc.aio.EOF."""
        call = self.emergencies.WatchAlerts(epb.WatchAlertsRequest(), metadata=(("authorization", f"Bearer {token}"),))
        try:
            await asyncio.wait_for(call.initial_metadata(), TIMEOUT_S)
        except asyncio.TimeoutError:
            call.cancel()
            raise ServiceError("UNAVAILABLE", "the emergencies service did not answer in time; try again") from None
        except BaseException:  # the page went away meanwhile
            call.cancel()
            raise
        if call.done() and await call.code() != grpc.StatusCode.OK:
            raise ServiceError((await call.code()).name, await call.details() or "")
        return call

    # --- incidents

    async def incidents_page(self, token: str, *, unit: str = "", statuses: list[str] = (), category: str = "",
                             reported_from: datetime | None = None, reported_to: datetime | None = None,
                             bbox: tuple[float, float, float, float] | None = None, ids: list[str] = (),
                             page_size: int = INCIDENTS_PAGE, page_token: str = "") -> tuple[list[dict], str]:
        req = ipb.ListIncidentsRequest(grid_code=unit, statuses=[STATUS_PB[s] for s in statuses],
                                       category_code=category, reported_from=timestamp(reported_from),
                                       reported_to=timestamp(reported_to), incident_ids=list(ids),
                                       page_size=page_size, page_token=page_token)
        if bbox:
            req.bbox.CopyFrom(ipb.BoundingBox(min_lon=bbox[0], min_lat=bbox[1], max_lon=bbox[2], max_lat=bbox[3]))
        reply = await self._call(self.incidents.ListIncidents, req, token)
        return [incident_json(i) for i in reply.incidents], reply.next_page_token

    async def incident(self, token: str, incident_id: str) -> tuple[dict, list[dict]]:
        reply = await self._call(self.incidents.GetIncident, ipb.GetIncidentRequest(incident_id=incident_id), token)
        return incident_json(reply.incident), [history_json(h) for h in reply.history]

    async def transition(self, token: str, incident_id: str, action: str, expected_version: int, *, note: str = "",
                         violation_confirmed: bool = False, review_at: datetime | None = None) -> dict:
        req = ipb.TransitionRequest(incident_id=incident_id, action=ACTION_PB[action], expected_version=expected_version,
                                    note=note, violation_confirmed=violation_confirmed)
        if review_at is not None:
            req.review_at.FromDatetime(review_at)
        return incident_json(await self._call(self.incidents.Transition, req, token))

    async def decide_procedure(self, token: str, task_id: str, procedure: str, approve: bool, reason: str,
                               version: int, granted_minutes: int = 0) -> dict:
        return task_json(await self._call(self.dispatch.DecideProcedure, dpb.ProcedureDecision(
            task_id=task_id, procedure=procedure, approve=approve, reason=reason, granted_minutes=granted_minutes,
            expected_version=version), token))

    async def report(self, token: str, form: dict) -> tuple[dict, bool]:
        """A report through the idempotent intake: the phone's report_id makes a retry a replay."""
        loc = form["location"]
        req = ipb.ReportRequest(
            report_id=form["report_id"], category_code=form["category_code"], title=form["title"],
            description=form["description"], occurred_at=timestamp(form["occurred_at"]),
            location=ipb.Location(lon=loc["lon"], lat=loc["lat"], accuracy_m=loc["accuracy_m"]),
            attachments=[ipb.Attachment(**a) for a in form["attachments"]])
        reply = await self._call(self.incidents.Report, req, token)
        return incident_json(reply.incident), reply.replayed

    async def update_member(self, token: str, member_id: str, **changes) -> dict:
        return member_json(await self._call(self.grid.UpdateMember, gpb.UpdateMemberRequest(id=member_id, **changes),
                                            token))

    async def report_position(self, token: str, member_id: str, lon: float, lat: float) -> dict:
        reply = await self._call(self.grid.ReportPosition, gpb.ReportPositionRequest(member_id=member_id, lon=lon,
                                                                                     lat=lat), token)
        return {"lon": reply.position.lon, "lat": reply.position.lat, "grid_code": reply.grid_code or None,
                "reported_at": _time(reply.position.reported_at)}

    async def categories(self, token: str) -> list[dict]:
        reply = await self._call(self.incidents.ListCategories, ipb.ListCategoriesRequest(), token)
        return [{"code": c.code, "name": c.name, "parent_code": c.parent_code or None, "priority": c.priority}
                for c in reply.categories]

    async def summarize(self, token: str, group_by: str, *, unit: str = "", reported_from: datetime,
                        reported_to: datetime, time_zone: str = "", limit: int = 0) -> dict:
        req = ipb.SummarizeRequest(group_by=group_by, grid_code=unit, time_zone=time_zone, limit=limit,
                                   reported_from=timestamp(reported_from), reported_to=timestamp(reported_to))
        reply = await self._call(self.incidents.Summarize, req, token)
        return {"rows": [{"key": r.key, "count": r.count, "open": r.open} for r in reply.rows], "total": reply.total}

    # --- dispatch

    async def queue(self, token: str, *, unit: str = "", statuses: list[str] = (), escalated_only: bool = False,
                    limit: int = 500) -> list[dict]:
        reply = await self._call(self.dispatch.ListQueue, dpb.ListQueueRequest(
            unit_code=unit, statuses=list(statuses), escalated_only=escalated_only, limit=limit), token)
        return [task_json(t) for t in reply.tasks]

    async def task_of(self, token: str, incident_id: str) -> dict:
        """The incident's task with its history."""
        task = await self._call(self.dispatch.GetTask, dpb.GetTaskRequest(incident_id=incident_id), token)
        return task_json(await self._call(self.dispatch.GetTask, dpb.GetTaskRequest(task_id=task.id), token))

    async def assign(self, token: str, task_id: str, department: str, version: int) -> dict:
        return task_json(await self._call(self.dispatch.Assign, dpb.AssignRequest(
            task_id=task_id, department_code=department, expected_version=version), token))

    async def reroute(self, token: str, task_id: str, department: str, reason: str, version: int) -> dict:
        return task_json(await self._call(self.dispatch.Reroute, dpb.RerouteRequest(
            task_id=task_id, department_code=department, reason=reason, expected_version=version), token))

    async def reject(self, token: str, task_id: str, reason: str, version: int) -> dict:
        return task_json(await self._call(self.dispatch.Reject, dpb.RejectRequest(
            task_id=task_id, reason=reason, expected_version=version), token))

    async def merge(self, token: str, task_id: str, into_incident_id: str, version: int) -> dict:
        return task_json(await self._call(self.dispatch.Merge, dpb.MergeRequest(
            task_id=task_id, into_incident_id=into_incident_id, expected_version=version), token))

    async def departments(self, token: str) -> list[dict]:
        reply = await self._call(self.dispatch.ListDepartments, dpb.ListDepartmentsRequest(), token)
        return [department_json(d) for d in reply.departments]

    async def evaluation(self, token: str, start: datetime, end: datetime, group_by: str, unit: str = "") -> list[dict]:
        req = dpb.EvaluationRequest(group_by=group_by, unit_code=unit, to=timestamp(end))
        getattr(req, "from").CopyFrom(timestamp(start))
        reply = await self._call(self.dispatch.GetEvaluation, req, token)
        return [evaluation_json(r) for r in reply.rows]
