"""The emergencies service's gRPC server: officers' alert stream and answers; dispatchers'
suggestions.

Run: python -m services.emergencies.grpc_server (port GRIDBUS_EMERGENCIES_GRPC_PORT)."""
from __future__ import annotations

import queue

from gridbus.emergencies.v1 import emergencies_pb2 as pb
from gridbus.emergencies.v1 import emergencies_pb2_grpc as pb_grpc
from services import registry
from services.emergencies import access, operations as ops
from shared import auth
from shared.changefeed import ChangeFeed
from shared.grpc_support import serve, server_stream, timestamp, unary
from shared.logs import setup_logging

SERVICE_NAME = "gridbus.emergencies.v1.EmergencyService"
NOTICES = ("emergencies.alert.sent", "emergencies.alert.accepted", "emergencies.alert.withdrawn")


def alert_pb(alert, people) -> pb.Alert:
    return pb.Alert(id=str(alert.id), incident_id=str(alert.incident_id), category=alert.category, title=alert.title,
                    lon=alert.lon, lat=alert.lat, stage=alert.stage, status=alert.status,
                    deadline=timestamp(alert.deadline), opened_at=timestamp(alert.opened_at),
                    accepted_by=alert.accepted_by or "", accepted_by_name=alert.accepted_by_name or "",
                    recipients=[pb.Recipient(member_id=r.member_id, stage=r.stage, distance_m=r.distance_m or 0,
                                             answer=r.answer or "", reason=r.reason or "") for r in people])


def notice_for(member_id: str, event: dict) -> pb.AlertNotice | None:
    """What an officer's phone is told of an event: an alert that reached them, and that one they
    were sent was taken or withdrawn; nothing about alerts sent to others."""
    data = event.get("data") or {}
    mine = next((r for r in data.get("recipients") or [] if r["member_id"] == member_id), None)
    kind = event.get("type", "")
    if mine is None or kind not in NOTICES:
        return None
    accepted = kind == "emergencies.alert.accepted"
    location = data.get("location") or {}
    return pb.AlertNotice(event_id=event.get("id", ""), type=kind, alert_id=data.get("alert_id", ""),
                          incident_id=data.get("incident_id", ""), category=data.get("category", ""),
                          title=data.get("title", ""), lon=location.get("lon", 0), lat=location.get("lat", 0),
                          stage=data.get("stage", ""), distance_m=(mine or {}).get("distance_m", 0),
                          accepted_by=data.get("member_id", "") if accepted else "",
                          accepted_by_name=data.get("member_name", "") if accepted else "",
                          reason=data.get("reason", "") if kind == "emergencies.alert.withdrawn" else "")


class EmergencyServicer(pb_grpc.EmergencyServiceServicer):
    access = access.TABLE

    def __init__(self, feed: ChangeFeed):
        self.feed = feed

    @server_stream
    def WatchAlerts(self, request, context, caller):
        auth.require_role(caller, auth.OFFICER)
        q = self.feed.subscribe()
        context.send_initial_metadata(())  # bound: every alert from now on reaches this stream
        try:
            while context.is_active():
                try:
                    event = q.get(timeout=1.0)
                except queue.Empty:
                    continue
                notice = notice_for(caller.member_id, event)
                if notice is not None:
                    yield notice
        finally:
            self.feed.unsubscribe(q)

    @unary
    def Accept(self, request, context, caller):
        return alert_pb(*ops.answer(caller, request.alert_id, True))

    @unary
    def Decline(self, request, context, caller):
        return alert_pb(*ops.answer(caller, request.alert_id, False, request.reason))

    @unary
    def GetAlert(self, request, context, caller):
        return alert_pb(*ops.get(caller, request.alert_id))

    @unary
    def Suggest(self, request, context, caller):
        return pb.SuggestResponse(officers=[
            pb.Suggestion(member_id=c.member_id, name=c.name, distance_m=c.distance_m, open_alerts=c.open_cases)
            for c in ops.suggest(caller, request.incident_id, request.limit)])


def main() -> None:
    s = registry.start("emergencies-grpc")
    setup_logging()
    feed = ChangeFeed(s.amqp_uri, ["emergencies.alert.*"])
    serve(SERVICE_NAME, pb_grpc.add_EmergencyServiceServicer_to_server, EmergencyServicer(feed),
          registry.port("emergencies"), workers=s.emergencies_grpc_workers)  # a thread per open WatchAlerts


if __name__ == "__main__":
    main()
