"""`gridbus incidents ...`: the operators' and dispatchers' command line for incidents.

Commands that act as a person go through the gRPC API with a bearer token (--token or
GRIDBUS_TOKEN; `gridbus token mint` makes one), so they obey the same rules as a phone or a
console. Loading the catalogue is an operator's job done on the database."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

from services.incidents.domain import ACTIONS, STATUSES
from shared.cli import call_or_exit, operator_stub
from shared.datum import Datum

DEFAULT_CATEGORIES = Path(__file__).resolve().parent / "config" / "categories.yaml"


def register(sub) -> None:
    i = sub.add_parser("incidents", help="incidents: report, list, show, act, watch, load categories")
    i.add_argument("--server", default=None, help="host:port of the incidents gRPC server "
                                                  "(default localhost:GRIDBUS_INCIDENTS_GRPC_PORT)")
    i.add_argument("--token", help="bearer token (default $GRIDBUS_TOKEN)")
    s = i.add_subparsers(dest="action", required=True)

    cat = s.add_parser("load-categories", help="load the category catalogue (codes missing from it are deactivated)")
    cat.add_argument("file", nargs="?", default=str(DEFAULT_CATEGORIES), help="YAML catalogue (default: the bundled one)")
    cat.set_defaults(func=load_categories)

    rep = s.add_parser("report", help="report an incident, as an officer")
    rep.add_argument("--category", required=True)
    rep.add_argument("--title", required=True)
    rep.add_argument("--description", default="")
    rep.add_argument("--lon", type=float, required=True)
    rep.add_argument("--lat", type=float, required=True)
    rep.add_argument("--datum", choices=[d.value for d in Datum], default=Datum.WGS84.value,
                     help="the datum of --lon/--lat (gcj02: AMap, Tencent; bd09: Baidu); "
                          "converted to WGS 84 before the point is pinned (default wgs84)")
    rep.add_argument("--accuracy", type=float, default=10.0, help="metres")
    rep.add_argument("--report-id", default=None, help="reuse to retry safely (default: a new UUID)")
    rep.set_defaults(func=report)

    ls = s.add_parser("list", help="list incidents you may see, newest first")
    ls.add_argument("--grid", default="", help="a unit code: its whole subtree")
    ls.add_argument("--status", nargs="*", default=[], choices=STATUSES)
    ls.add_argument("--category", default="")
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(func=list_)

    show = s.add_parser("show", help="one incident and its history")
    show.add_argument("incident_id")
    show.set_defaults(func=show_)

    act = s.add_parser("act", help="move an incident on (as dispatcher, department or officer)")
    act.add_argument("incident_id")
    act.add_argument("action", choices=list(ACTIONS))
    act.add_argument("--version", type=int, required=True, help="the version you read (see `show`)")
    act.add_argument("--department", default="")
    act.add_argument("--note", default="")
    act.add_argument("--violation", action="store_true", help="close: a violation by the subject was confirmed")
    act.add_argument("--duplicate-of", default="")
    act.add_argument("--review-at", default="", help="request_park: when the case comes back (ISO 8601 with zone)")
    act.set_defaults(func=act_)

    watch = s.add_parser("watch", help="print changes in a grid subtree as they happen (Ctrl-C stops)")
    watch.add_argument("grid")
    watch.set_defaults(func=watch_)


def load_categories(args) -> None:
    import yaml

    from services.incidents import operations as ops
    from shared.cli import operator_principal

    with open(args.file, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    active, deactivated = ops.load_categories(operator_principal(), doc)
    print(f"{active} categories active, {deactivated} deactivated")


def _stub(args):
    from gridbus.incidents.v1 import incidents_pb2_grpc
    from services import registry
    return operator_stub(incidents_pb2_grpc.IncidentServiceStub, args.server, registry.port("incidents"), args.token)


def _line(i) -> str:
    from gridbus.incidents.v1 import incidents_pb2 as pb
    status = pb.Status.Name(i.status).removeprefix("STATUS_").lower()
    return (f"{i.id}  v{i.version:<3} {status:<12} {i.category_code:<6} {i.grid_code}  "
            f"{i.department_code or '-':<16} {i.title[:40]}")


def report(args) -> None:
    from gridbus.incidents.v1 import incidents_pb2 as pb
    from shared import geo_proto
    stub, md = _stub(args)
    req = pb.ReportRequest(report_id=args.report_id or str(uuid.uuid4()), category_code=args.category,
                           title=args.title, description=args.description,
                           location=pb.Location(lon=args.lon, lat=args.lat, accuracy_m=args.accuracy,
                                                datum=geo_proto.TO_PB[Datum(args.datum)]))
    req.occurred_at.FromDatetime(datetime.now(timezone.utc))
    out = call_or_exit(stub.Report, req, metadata=md)
    print(("replayed: " if out.replayed else "") + _line(out.incident))
    if out.incident.duplicate_of:
        print(f"likely duplicate of {out.incident.duplicate_of}")


def list_(args) -> None:
    from gridbus.incidents.v1 import incidents_pb2 as pb
    stub, md = _stub(args)
    statuses = [getattr(pb, f"STATUS_{s.upper()}") for s in args.status]
    left, token = args.limit, ""
    while left > 0:
        page = call_or_exit(stub.ListIncidents, pb.ListIncidentsRequest(
                   grid_code=args.grid, statuses=statuses, category_code=args.category, page_size=min(left, 200),
                   page_token=token), metadata=md)
        for i in page.incidents:
            print(_line(i))
        left -= len(page.incidents)
        token = page.next_page_token
        if not token:
            break


def show_(args) -> None:
    from gridbus.incidents.v1 import incidents_pb2 as pb
    from shared import geo_proto
    stub, md = _stub(args)
    got = call_or_exit(stub.GetIncident, pb.GetIncidentRequest(incident_id=args.incident_id), metadata=md)
    print(_line(got.incident))
    print(f"  at ({got.incident.location.lon:.6f}, {got.incident.location.lat:.6f}) ±{got.incident.location.accuracy_m:.0f} m, "
          f"lineage {' > '.join(got.incident.lineage)}")
    sent = got.incident.as_sent
    if geo_proto.FROM_PB.get(sent.datum) in geo_proto.SHIFTED:
        print(f"  sent as ({sent.lon:.6f}, {sent.lat:.6f}) in {geo_proto.FROM_PB[sent.datum].value}")
    for h in got.history:
        to = pb.Status.Name(h.to_status).removeprefix("STATUS_").lower()
        print(f"  v{h.version:<3} {h.at.ToDatetime():%Y-%m-%d %H:%M:%S} {h.action:<9} -> {to:<12} "
              f"{h.actor_role}:{h.actor_id} {h.note}")


def act_(args) -> None:
    from gridbus.incidents.v1 import incidents_pb2 as pb
    stub, md = _stub(args)
    from shared.timefmt import parse_iso
    req_review = parse_iso(args.review_at, "--review-at") if args.review_at else None
    out = call_or_exit(stub.Transition, pb.TransitionRequest(
               incident_id=args.incident_id, action=getattr(pb, f"ACTION_{args.action.upper()}"),
               expected_version=args.version, department_code=args.department, note=args.note,
               violation_confirmed=args.violation, duplicate_of=args.duplicate_of,
               review_at=_timestamp(req_review)), metadata=md)
    print(_line(out) + (f"  pending {out.pending}" if out.pending else ""))


def _timestamp(when):
    if when is None:
        return None
    from google.protobuf.timestamp_pb2 import Timestamp
    t = Timestamp()
    t.FromDatetime(when)
    return t


def watch_(args) -> None:
    from gridbus.incidents.v1 import incidents_pb2 as pb
    stub, md = _stub(args)
    try:
        for change in stub.Watch(pb.WatchRequest(grid_code=args.grid), metadata=md):
            print(f"{change.type:<32} {_line(change.incident)}", flush=True)
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # grpc.RpcError: the stream ended with a status
        details = exc.details() if hasattr(exc, "details") else str(exc)
        raise SystemExit(f"gridbus: {details}")
