"""The demo's emergency step: an officer's phone reports where it is and holds its alert stream
open; a road collapse is reported nearby; the alert reaches that officer (and any other on duty
within the radius), who accepts it."""
from __future__ import annotations

import queue
import threading
import uuid
from datetime import datetime, timezone

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from gridbus.emergencies.v1 import emergencies_pb2 as pb
from gridbus.emergencies.v1 import emergencies_pb2_grpc
from gridbus.grid.v1 import grid_pb2, grid_pb2_grpc
from gridbus.incidents.v1 import incidents_pb2 as ipb
from gridbus.incidents.v1 import incidents_pb2_grpc
from services import registry
from shared import tls
from shared.health import check_grpc, wait_until


def read_stream(stream, put) -> None:
    """Takes the stream's notices until it is cancelled (when the demo is done with it)."""
    try:
        for notice in stream:
            put(notice)
    except grpc.RpcError:
        pass


def run(officers) -> None:
    port = registry.port("emergencies")
    wait_until(lambda: check_grpc(f"127.0.0.1:{port}", timeout=1))
    alerts = emergencies_pb2_grpc.EmergencyServiceStub(tls.channel(f"127.0.0.1:{port}"))
    grid = grid_pb2_grpc.GridServiceStub(tls.channel(f"127.0.0.1:{registry.port('grid')}"))
    incidents = incidents_pb2_grpc.IncidentServiceStub(tls.channel(f"127.0.0.1:{registry.port('incidents')}"))
    o, code, (w, s, e, n), me = officers[0]
    lon, lat = (w + e) / 2, (s + n) / 2
    grid.ReportPosition(grid_pb2.ReportPositionRequest(member_id=o.id, lon=lon + 0.001, lat=lat), metadata=me)
    stream = alerts.WatchAlerts(pb.WatchAlertsRequest(), metadata=me)
    stream.initial_metadata()
    notices: queue.Queue = queue.Queue()
    threading.Thread(target=read_stream, args=(stream, notices.put), daemon=True).start()
    ts = Timestamp()
    ts.FromDatetime(datetime.now(timezone.utc))
    print(f"== emergencies: a road collapse is reported in grid {code}; {o.name} is ~100 m away, on duty")
    incident = incidents.Report(ipb.ReportRequest(
        report_id=str(uuid.uuid4()), category_code="0401", title="路面塌陷 Road collapse",
        location=ipb.Location(lon=lon, lat=lat, accuracy_m=5), occurred_at=ts), metadata=me).incident
    try:
        while True:
            notice = notices.get(timeout=30)
            if notice.incident_id == incident.id and notice.type == "emergencies.alert.sent":
                break
    except queue.Empty:
        print("   no alert within 30 s: see .run/logs/emergencies-nameko.log")
        stream.cancel()
        return
    print(f"   alert on {o.name}'s phone: {notice.title}, {notice.distance_m:.0f} m away ({notice.stage})")
    taken = alerts.Accept(pb.AnswerRequest(alert_id=notice.alert_id), metadata=me)
    print(f"   {o.name} accepts; the alert reached {len(taken.recipients)} officer(s) and is now {taken.status}")
    stream.cancel()
