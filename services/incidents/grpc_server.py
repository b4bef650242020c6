"""The incidents service's gRPC server: maps protos to operations and errors to status codes.

Run: python -m services.incidents.grpc_server (port from GRIDBUS_INCIDENTS_GRPC_PORT)."""
from __future__ import annotations

import logging
import queue
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from gridbus.incidents.v1 import incidents_pb2 as pb
from gridbus.incidents.v1 import incidents_pb2_grpc as pb_grpc
from services import registry
from services.incidents import access, domain
from services.incidents import operations as ops
from shared.changefeed import ChangeFeed
from shared import geo_proto
from shared.errors import DomainError, InvalidArgument
from shared.grpc_support import STATUS, serve, server_stream, time_field, timestamp, unary
from shared.logs import setup_logging

log = logging.getLogger(__name__)

SERVICE_NAME = "gridbus.incidents.v1.IncidentService"
# Reports are small: text and references. Bigger requests are refused by grpc (RESOURCE_EXHAUSTED).
MAX_REQUEST_BYTES = 256 * 1024
MAX_BATCH_ITEMS = 500

STATUS_PB = {s: getattr(pb, f"STATUS_{s.upper()}") for s in domain.STATUSES}
STATUS_NAME = {v: k for k, v in STATUS_PB.items()}
ACTION_NAME = {getattr(pb, f"ACTION_{a.upper()}"): a for a in domain.ACTIONS}


def incident_pb(v: ops.IncidentView) -> pb.Incident:
    out = pb.Incident(
        id=v.id, report_id=v.report_id, category_code=v.category_code, title=v.title,
        description=v.description, location=pb.Location(lon=v.lon, lat=v.lat, accuracy_m=v.accuracy_m),
        occurred_at=timestamp(v.occurred_at), reported_at=timestamp(v.reported_at), reporter_id=v.reporter_id,
        grid_code=v.grid_code, lineage=v.lineage, status=STATUS_PB[v.status], version=v.version,
        priority=v.priority, department_code=v.department_code or "", duplicate_of=v.duplicate_of or "",
        subject=pb.Subject(type=v.subject.type, ref=v.subject.ref) if v.subject else None,
        attachments=[pb.Attachment(**a) for a in v.attachments],
        violation_confirmed=bool(v.violation_confirmed), updated_at=timestamp(v.updated_at),
        pending=v.pending or "", review_at=timestamp(v.review_at), supervised=v.supervised,
        assisting=v.assisting)
    if v.sent:
        out.as_sent.CopyFrom(geo_proto.geo_point(*v.sent))
    return out


def _incident_from_event(data: dict) -> pb.Incident:
    """The incident as the event describes it (Watch streams events, it does not re-read)."""
    def ts(value: str | None) -> Timestamp | None:  # RFC 3339 from the event; unset when missing
        if not value:
            return None
        t = Timestamp()
        t.FromJsonString(value)
        return t
    loc = data.get("location") or {}
    subject = data.get("subject")
    return pb.Incident(
        id=data["incident_id"], report_id=data.get("report_id") or "", category_code=data.get("category") or "",
        location=pb.Location(lon=loc.get("lon", 0), lat=loc.get("lat", 0), accuracy_m=loc.get("accuracy_m", 0)),
        occurred_at=ts(data.get("occurred_at")), reported_at=ts(data.get("reported_at")),
        reporter_id=data.get("reporter_id") or "", grid_code=data.get("grid_code") or "",
        lineage=data.get("lineage") or [], status=STATUS_PB.get(data.get("status"), pb.STATUS_UNSPECIFIED),
        version=data.get("version") or 0, priority=data.get("priority") or 0,
        department_code=data.get("department_code") or "", duplicate_of=data.get("duplicate_of") or "",
        subject=pb.Subject(**subject) if subject else None,
        violation_confirmed=bool(data.get("violation_confirmed")), updated_at=ts(data.get("at")),
        pending=data.get("pending") or "", review_at=ts(data.get("review_at")),
        supervised=bool(data.get("supervised")), assisting=data.get("assisting") or [])


def _report(caller, request: pb.ReportRequest) -> ops.ReportResult:
    loc = request.location
    if not request.HasField("location"):
        raise InvalidArgument("location is required")
    return ops.report(
        caller, report_id=request.report_id, category_code=request.category_code, title=request.title,
        description=request.description, lon=loc.lon, lat=loc.lat, accuracy_m=loc.accuracy_m,
        occurred_at=time_field(request, "occurred_at"), attachments=list(request.attachments),
        subject_type=request.subject.type, subject_ref=request.subject.ref, datum=geo_proto.datum(loc.datum))


class IncidentServicer(pb_grpc.IncidentServiceServicer):
    access = access.TABLE

    def __init__(self, feed: ChangeFeed | None = None):
        self.feed = feed

    @unary
    def Report(self, request, context, caller):
        r = _report(caller, request)
        return pb.ReportResponse(incident=incident_pb(r.incident), replayed=r.replayed)

    @unary
    def ReportBatch(self, request_iterator, context, caller):
        results, accepted = [], 0
        for index, item in enumerate(request_iterator):
            out = pb.BatchItemResult(index=index, report_id=item.report_id)
            if index >= MAX_BATCH_ITEMS:
                out.code = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
                out.message = f"a batch holds at most {MAX_BATCH_ITEMS} reports; send the rest again"
            else:
                try:
                    r = _report(caller, item)
                    out.incident.CopyFrom(incident_pb(r.incident))
                    out.replayed = r.replayed
                    accepted += 1
                except DomainError as exc:
                    out.code = STATUS[exc.code].value[0]
                    out.message = exc.message
            results.append(out)
        return pb.ReportBatchResponse(results=results, accepted=accepted, refused=len(results) - accepted)

    @unary
    def GetIncident(self, request, context, caller):
        incident, history = ops.get(caller, request.incident_id)
        return pb.GetIncidentResponse(incident=incident_pb(incident), history=[
            pb.HistoryEntry(version=h.version, action=h.action,
                            from_status=STATUS_PB.get(h.from_status, pb.STATUS_UNSPECIFIED),
                            to_status=STATUS_PB[h.to_status], actor_id=h.actor_id, actor_role=h.actor_role,
                            note=h.note or "", department_code=h.department_code or "", at=timestamp(h.at))
            for h in history])

    @unary
    def ListIncidents(self, request, context, caller):
        statuses = []
        for s in request.statuses:
            if s not in STATUS_NAME:
                raise InvalidArgument(f"unknown status {s}")
            statuses.append(STATUS_NAME[s])
        bbox = None
        if request.HasField("bbox"):
            b = request.bbox
            bbox = (b.min_lon, b.min_lat, b.max_lon, b.max_lat)
        filters = ops.Filters(grid_code=request.grid_code or None, statuses=statuses,
                              category_code=request.category_code or None,
                              reported_from=time_field(request, "reported_from"),
                              reported_to=time_field(request, "reported_to"), bbox=bbox,
                              ids=list(request.incident_ids))
        incidents, token = ops.list_incidents(caller, filters, request.page_size, request.page_token)
        return pb.ListIncidentsResponse(incidents=[incident_pb(i) for i in incidents], next_page_token=token)

    @unary
    def Transition(self, request, context, caller):
        action = ACTION_NAME.get(request.action)
        if action is None:
            raise InvalidArgument("action is required")
        req = domain.Request(action=action, department_code=request.department_code or None,
                             note=request.note or None, violation_confirmed=request.violation_confirmed,
                             duplicate_of=request.duplicate_of or None,
                             review_at=time_field(request, "review_at"))
        return incident_pb(ops.transition(caller, request.incident_id, request.expected_version, req))

    @server_stream
    def Watch(self, request, context, caller):
        if self.feed is None:
            raise InvalidArgument("this server does not stream changes")
        ops.check_watch(caller, request.grid_code)
        q = self.feed.subscribe()
        context.send_initial_metadata(())  # tells the client the feed is bound: it sees every change from now
        try:
            while context.is_active():
                try:
                    event = q.get(timeout=1.0)
                except queue.Empty:
                    continue
                data = event.get("data") or {}
                if request.grid_code not in (data.get("lineage") or []):
                    continue
                yield pb.IncidentChange(event_id=event.get("id", ""), type=event.get("type", ""),
                                        incident=_incident_from_event(data),
                                        previous_status=data.get("previous_status") or "",
                                        actor_id=(data.get("actor") or {}).get("id", ""),
                                        note=data.get("note") or "")
        finally:
            self.feed.unsubscribe(q)

    @unary
    def ListCategories(self, request, context, caller):
        return pb.ListCategoriesResponse(categories=[
            pb.Category(code=c.code, name=c.name, parent_code=c.parent_code or "", priority=c.priority,
                        deadline_hours=c.deadline_hours, active=c.active, file_requires=list(c.file_requires or ()),
                        close_requires=list(c.close_requires or ()),
                        independent_verification=bool(c.independent_verification))
            for c in ops.list_categories(caller, request.include_inactive)])

    @unary
    def Summarize(self, request, context, caller):
        filters = ops.Filters(grid_code=request.grid_code or None, category_code=request.category_code or None,
                              reported_from=time_field(request, "reported_from"),
                              reported_to=time_field(request, "reported_to"))
        rows, total = ops.summarize(caller, request.group_by, filters, request.time_zone, request.limit)
        return pb.SummarizeResponse(rows=[pb.SummaryRow(key=r.key, count=r.count, open=r.open) for r in rows],
                                    total=total)


def main() -> None:
    s = registry.start("incidents-grpc")
    setup_logging()
    feed = ChangeFeed(s.amqp_uri, ["incidents.incident.*"])
    ops.leaf_grids()  # reports are pinned from memory: built before the first one is taken
    serve(SERVICE_NAME, pb_grpc.add_IncidentServiceServicer_to_server, IncidentServicer(feed),
          registry.port("incidents"), workers=32, max_receive_bytes=MAX_REQUEST_BYTES)


if __name__ == "__main__":
    main()
