"""`gridbus dispatch ...`: load departments and rules, print evaluation figures (operators, on
the database), and a dispatcher's queue and actions (through gRPC with a token)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from services.dispatch.domain import GROUPINGS
from services.dispatch.procedures import TASK_PROCEDURES
from shared.cli import call_or_exit, operator_stub

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "dispatch.yaml"


def register(sub) -> None:
    d = sub.add_parser("dispatch", help="dispatch: rules, evaluation, a dispatcher's queue and actions")
    d.add_argument("--server", default=None, help="host:port of the dispatch gRPC server")
    d.add_argument("--token", help="bearer token (default $GRIDBUS_TOKEN)")
    s = d.add_subparsers(dest="action", required=True)

    load = s.add_parser("load", help="upsert departments and replace the active rules from a YAML file")
    load.add_argument("file", nargs="?", default=str(DEFAULT_CONFIG))
    load.set_defaults(func=load_)

    ev = s.add_parser("evaluation", help="figures per department or unit, as a table")
    ev.add_argument("--from", dest="start", help="ISO date or time (default: 30 days ago)")
    ev.add_argument("--to", dest="end", help="ISO date or time (default: now)")
    ev.add_argument("--group-by", default="department", choices=GROUPINGS)
    ev.add_argument("--unit", default="", help="only this unit's subtree")
    ev.add_argument("--department", default="")
    ev.set_defaults(func=evaluation_)

    q = s.add_parser("queue", help="open tasks, nearest deadline first (as a dispatcher or department)")
    q.add_argument("--unit", default="")
    q.add_argument("--escalated", action="store_true")
    q.add_argument("--limit", type=int, default=50)
    q.set_defaults(func=queue_)

    for name, extra in (("assign", ["department"]), ("reroute", ["department", "reason"]), ("reject", ["reason"])):
        p = s.add_parser(name, help=f"{name} a task (as a dispatcher)")
        p.add_argument("task_id")
        p.add_argument("--version", type=int, required=True)
        for e in extra:
            p.add_argument(f"--{e}", required=True)
        p.set_defaults(func=act_, verb=name)

    helper = s.add_parser("assist", help="add an assisting department (协办) to a case's lead task (as a dispatcher)")
    helper.add_argument("task_id")
    helper.add_argument("--version", type=int, required=True)
    helper.add_argument("--department", required=True)
    helper.add_argument("--reason", required=True)
    helper.set_defaults(func=assist_)
    let_go = s.add_parser("release", help="release an assisting task that is not needed (as a dispatcher)")
    let_go.add_argument("task_id")
    let_go.add_argument("--version", type=int, required=True)
    let_go.add_argument("--reason", required=True)
    let_go.set_defaults(func=release_)

    ask = s.add_parser("request", help="ask for a side procedure on a task (as its department): the clock stops")
    ask.add_argument("task_id")
    ask.add_argument("procedure", choices=list(TASK_PROCEDURES))
    ask.add_argument("--version", type=int, required=True)
    ask.add_argument("--reason", required=True)
    ask.add_argument("--minutes", type=int, default=0, help="extension: the working minutes asked for")
    ask.set_defaults(func=request_)

    for verb in ("approve", "refuse"):
        dec = s.add_parser(verb, help=f"{verb} a task's waiting request (as a dispatcher)")
        dec.add_argument("task_id")
        dec.add_argument("procedure", choices=list(TASK_PROCEDURES))
        dec.add_argument("--version", type=int, required=True)
        dec.add_argument("--reason", required=True)
        if verb == "approve":
            dec.add_argument("--granted-minutes", type=int, default=0, help="extension: fewer than asked (0: all)")
        dec.set_defaults(func=decide_, approve=verb == "approve")


def _when(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    when = datetime.fromisoformat(value)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def load_(args) -> None:
    import yaml

    from services.dispatch import operations as ops
    from shared.cli import operator_principal
    with open(args.file, encoding="utf-8") as f:
        departments, rules = ops.load_config(operator_principal(), yaml.safe_load(f))
    print(f"{departments} departments, {rules} active rules")


def format_evaluation(rows, group_by: str) -> str:
    head = (f"{group_by:<18} {'dispatched':>10} {'ack on time':>11} {'resolved on time':>16} {'closure':>8} "
            f"{'on-time closure':>15} {'rework':>7} {'mean h to resolve':>17}")
    lines = [head, "-" * len(head)]
    for key, r in rows:
        lines.append(f"{key:<18} {r['dispatched']:>10} {r['acknowledged_on_time']:>11} {r['resolved_on_time']:>16} "
                     f"{r['closure_rate']:>8.0%} {r['on_time_closure_rate']:>15.0%} {r['rework_rate']:>7.0%} "
                     f"{r['mean_hours_to_resolve']:>17.2f}")
    return "\n".join(lines)


def evaluation_(args) -> None:
    from services.dispatch import operations as ops
    from shared.cli import operator_principal
    now = datetime.now(timezone.utc)
    rows = ops.evaluation(operator_principal(), _when(args.start, now - timedelta(days=30)), _when(args.end, now),
                          group_by=args.group_by, unit_code=args.unit, department_code=args.department)
    print(format_evaluation(rows, args.group_by))


def _stub(args):
    from gridbus.dispatch.v1 import dispatch_pb2_grpc
    from services import registry
    return operator_stub(dispatch_pb2_grpc.DispatchServiceStub, args.server, registry.port("dispatch"), args.token)


def _line(t) -> str:
    due = t.next_due_at.ToDatetime().strftime("%m-%d %H:%M") if t.HasField("next_due_at") else "-"
    esc = f" escalated L{t.escalation_level} to {t.escalated_to}" if t.escalation_level else ""
    waits = f" {t.pending} requested" if t.pending else ""
    paused = " clock paused" if t.clock_paused else ""
    return (f"{t.id}  v{t.version:<3} {t.status:<12} {t.category:<6} {t.grid_code}  "
            f"{t.department_code or '(manual queue)':<16} due {due}{esc}{waits}{paused}")


def queue_(args) -> None:
    from gridbus.dispatch.v1 import dispatch_pb2 as pb
    stub, md = _stub(args)
    out = call_or_exit(stub.ListQueue, pb.ListQueueRequest(unit_code=args.unit, escalated_only=args.escalated,
                                                           limit=args.limit), metadata=md)
    for t in out.tasks:
        print(_line(t))


def act_(args) -> None:
    from gridbus.dispatch.v1 import dispatch_pb2 as pb
    stub, md = _stub(args)
    if args.verb == "assign":
        out = call_or_exit(stub.Assign, pb.AssignRequest(task_id=args.task_id, department_code=args.department,
                                                         expected_version=args.version), metadata=md)
    elif args.verb == "reroute":
        out = call_or_exit(stub.Reroute, pb.RerouteRequest(task_id=args.task_id, department_code=args.department,
                                                           reason=args.reason, expected_version=args.version),
                           metadata=md)
    else:
        out = call_or_exit(stub.Reject, pb.RejectRequest(task_id=args.task_id, reason=args.reason,
                                                         expected_version=args.version), metadata=md)
    print(_line(out))


def request_(args) -> None:
    from gridbus.dispatch.v1 import dispatch_pb2 as pb
    stub, md = _stub(args)
    print(_line(call_or_exit(stub.RequestProcedure, pb.ProcedureRequest(
        task_id=args.task_id, procedure=args.procedure, reason=args.reason, minutes=args.minutes,
        expected_version=args.version), metadata=md)))


def decide_(args) -> None:
    from gridbus.dispatch.v1 import dispatch_pb2 as pb
    stub, md = _stub(args)
    print(_line(call_or_exit(stub.DecideProcedure, pb.ProcedureDecision(
        task_id=args.task_id, procedure=args.procedure, approve=args.approve, reason=args.reason,
        granted_minutes=getattr(args, "granted_minutes", 0), expected_version=args.version), metadata=md)))


def assist_(args) -> None:
    from gridbus.dispatch.v1 import dispatch_pb2 as pb
    stub, md = _stub(args)
    lead = call_or_exit(stub.AddAssist, pb.AssistRequest(task_id=args.task_id, department_code=args.department,
                                                         reason=args.reason, expected_version=args.version), metadata=md)
    print(_line(lead))
    for a in lead.assists:
        print("  assisting " + _line(a))


def release_(args) -> None:
    from gridbus.dispatch.v1 import dispatch_pb2 as pb
    stub, md = _stub(args)
    print(_line(call_or_exit(stub.ReleaseAssist, pb.ReleaseAssistRequest(
        task_id=args.task_id, reason=args.reason, expected_version=args.version), metadata=md)))
