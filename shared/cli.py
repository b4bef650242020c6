"""`gridbus`: the operators' command line. `gridbus --help` lists the commands."""
from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
import warnings
from pathlib import Path

# nameko's eventlet import warns on every command; operators need not see it.
warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")

from shared.auth import SERVICE, Principal, mint_token  # noqa: E402
from shared.errors import DomainError  # noqa: E402


DEFAULT_CATEGORIES = Path(__file__).resolve().parent.parent / "services/incidents/config/categories.yaml"


def _operator() -> Principal:
    """Commands run with database access act for the system, named after the OS user."""
    return Principal(member_id=f"cli:{getpass.getuser()}", role=SERVICE, scope=())


def operator_stub(stub_class, server: str | None, default_port: int, token: str | None):
    """A gRPC stub for a command that acts as a person, and the metadata carrying their token."""
    import grpc
    if not token:
        raise SystemExit("gridbus: give --token or set GRIDBUS_TOKEN (gridbus token mint ...)")
    channel = grpc.insecure_channel(server or f"localhost:{default_port}")
    return stub_class(channel), [("authorization", f"Bearer {token}")]


def call_or_exit(fn, *a, **kw):
    """Call a gRPC method; a refusal ends the command with its status and message."""
    import grpc
    try:
        return fn(*a, **kw)
    except grpc.RpcError as exc:
        raise SystemExit(f"gridbus: {exc.code().name}: {exc.details()}")


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str, total: int = 0):
        self.total, self.label, self.done, self.started = total, label, 0, time.monotonic()

    def __call__(self, step: int, total: int | None = None) -> None:
        self.total = total or self.total
        self.done += step
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{self.done}/{self.total} ({rate:,.0f}/s)")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def cmd_migrate(args) -> None:
    from shared.migrations import upgrade
    upgrade()
    print("migrated")


def cmd_token(args) -> None:
    if args.member:
        from services.grid import operations as ops
        member = ops.get_member(_operator(), args.member)
        if not member.active:
            raise DomainError(f"member {args.member} is inactive")
        role, scope = member.role, [code for code, _, _ in member.assignments]
        subject = member.id
    else:
        if not (args.role and args.subject):
            raise SystemExit("give --member ID, or --role, --subject and --scope for a non-member caller")
        role, scope, subject = args.role, args.scope or [], args.subject
    print(mint_token(subject, role, scope, ttl_seconds=args.ttl))


def cmd_grid_import(args) -> None:
    from services.grid import domain, operations as ops
    options = domain.ImportOptions(args.tolerance_m, args.repair, args.code_field, args.name_field)
    result = ops.import_file(_operator(), args.file, options, layer=args.layer, crs=args.crs,
                             encoding=args.encoding, progress=Progress("importing"))
    print(import_summary(result, args.show))


def import_summary(result, show: int) -> str:
    """What an import did, for the operator: counts, then what the tolerance let it adjust, per
    feature, the largest first."""
    from collections import Counter
    lines = [f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}",
             f"coordinates read as {result.source_crs}"]
    adjustments = result.adjustments
    if not adjustments:
        lines.append(f"nothing adjusted (tolerance {result.tolerance_m:g} m)")
        return "\n".join(lines)
    counts, areas = Counter(a.kind for a in adjustments), Counter()
    for a in adjustments:
        areas[a.kind] += a.area_m2
    lines.append(f"adjusted within the tolerance of {result.tolerance_m:g} m: " + ", ".join(
        f"{kind} {counts[kind]} ({areas[kind]:.6g} m²)" for kind in counts))
    listed = sorted(adjustments, key=lambda a: (-a.area_m2, a.index))[:show or None]
    lines.append(f"{'all' if len(listed) == len(adjustments) else f'the largest {len(listed)} of'} "
                 f"{len(adjustments)} adjustments (--show 0 lists all):")
    lines.append(f"{'feature':>8}  {'code':<15}  {'m²':>12}  what")
    lines += [f"{a.index:>8}  {a.code:<15}  {a.area_m2:>12.6g}  {a.describe()}" for a in listed]
    return "\n".join(lines)


def cmd_member_add(args) -> None:
    from services.grid import operations as ops
    admin = Principal(member_id=f"cli:{getpass.getuser()}", role="admin", scope=tuple(args.grid))
    member = ops.create_member(admin, args.name, args.phone, args.role)
    for i, code in enumerate(args.grid):
        member = ops.assign_member(admin, member.id, code, primary=(i == 0))
    print(member.id)


def cmd_health(args) -> None:
    from shared import health
    from shared.config import settings
    try:
        if args.kind == "grpc":
            health.check_grpc(args.target, args.timeout)
        else:
            health.check_nameko(settings().amqp_uri, args.target, args.timeout)
    except Exception as exc:
        raise SystemExit(f"{args.target}: not serving: {exc}")
    print("SERVING")


def cmd_relay(args) -> None:
    from shared.outbox import main
    main([args.schema])


def cmd_subscriptions(args) -> None:
    from datetime import datetime

    from services.subscriptions import operations as subs

    me = _operator()
    if args.action == "add":
        v = subs.subscribe(me, args.name, args.patterns)
        print(f"{v.name}: queue {v.queue} (dead letters: {v.dead_letter_queue}) <- {' '.join(v.patterns)}")
    elif args.action == "list":
        for v in subs.list_subscriptions(me):
            print(f"{v.name:<24} {v.queue:<36} {' '.join(v.patterns)}")
    elif args.action == "remove":
        subs.unsubscribe(me, args.name)
        print(f"removed {args.name}")
    else:
        since = datetime.fromisoformat(args.since) if args.since else None
        n = subs.replay(me, args.name, source=args.source, from_sequence=args.from_sequence, since=since)
        print(f"replayed {n} events into {args.name}")


def cmd_events_tail(args) -> None:
    """Prints events as they pass, from a temporary queue (nothing is taken from anyone)."""
    import kombu

    from shared.config import settings
    from shared.outbox import events_exchange

    def show(message):
        e = json.loads(message.body)
        print(f"{e['time']} {e['type']:<34} {e['subject']:<48} seq {e['sequence']}", flush=True)
        if args.data:
            print("   ", json.dumps(e["data"], ensure_ascii=False), flush=True)
        message.ack()

    with kombu.Connection(settings().amqp_uri) as conn:
        queue = kombu.Queue(exclusive=True, auto_delete=True, durable=False,
                            bindings=[kombu.binding(events_exchange(), routing_key=p) for p in args.patterns])
        with kombu.Consumer(conn, queues=[queue], on_message=show):
            try:
                while True:
                    try:
                        conn.drain_events(timeout=1)
                    except TimeoutError:
                        pass
            except KeyboardInterrupt:
                pass


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridbus", description="Operate gridbus.")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="create or upgrade every service's schema").set_defaults(func=cmd_migrate)

    t = sub.add_parser("token", help="mint a bearer token").add_subparsers(dest="action", required=True)
    mint = t.add_parser("mint", help="for a member (role and grids from the registry) or a service")
    mint.add_argument("--member", help="member id: role and scope come from their assignments")
    mint.add_argument("--role", choices=["officer", "dispatcher", "admin", "service", "department"])
    mint.add_argument("--subject", help="who the token is for, when not a member (e.g. dispatch-service)")
    mint.add_argument("--scope", nargs="*", help="unit codes, when not a member")
    mint.add_argument("--ttl", type=int, default=None, help="seconds (default GRIDBUS_TOKEN_TTL_SECONDS)")
    mint.set_defaults(func=cmd_token)

    g = sub.add_parser("grid", help="grid units").add_subparsers(dest="action", required=True)
    imp = g.add_parser("import", help="upsert units from a boundary file (GeoJSON, Shapefile, GeoPackage), "
                                      "all or nothing")
    imp.add_argument("file", help="path (.geojson/.json, .shp, .gpkg, ...), or - for GeoJSON on stdin")
    from services.grid.domain import DEFAULT_TOLERANCE_M
    imp.add_argument("--tolerance-m", type=float, default=DEFAULT_TOLERANCE_M, metavar="M",
                     help="metres a child may stick out of its parent, or siblings overlap, and be adjusted "
                          f"rather than refused (default {DEFAULT_TOLERANCE_M:g}; 0: adjust nothing)")
    imp.add_argument("--repair", action="store_true", help="repair invalid rings instead of refusing them")
    imp.add_argument("--code-field", default="code", help="the attribute holding the unit code (e.g. 编码)")
    imp.add_argument("--name-field", default="name", help="the attribute holding the name (e.g. 名称)")
    imp.add_argument("--crs", help="the file's coordinate reference system when it names none or the wrong one "
                                   "(e.g. EPSG:4549)")
    imp.add_argument("--layer", help="the layer of a file with several (GeoPackage)")
    imp.add_argument("--encoding", help="the attribute encoding of a Shapefile without a .cpg (e.g. GBK)")
    imp.add_argument("--show", type=int, default=50, metavar="N",
                     help="adjustments listed, the largest first (default 50; 0: all)")
    imp.set_defaults(func=cmd_grid_import)

    m = sub.add_parser("member", help="grid members").add_subparsers(dest="action", required=True)
    add = m.add_parser("add", help="register a member and assign them (first --grid is primary)")
    add.add_argument("--name", required=True)
    add.add_argument("--phone", required=True)
    add.add_argument("--role", required=True, choices=["officer", "dispatcher", "admin"])
    add.add_argument("--grid", nargs="+", required=True, help="unit codes")
    add.set_defaults(func=cmd_member_add)

    from services.credit import cli as credit_cli
    from services.dispatch import cli as dispatch_cli
    from services.incidents import cli as incidents_cli
    incidents_cli.register(sub, DEFAULT_CATEGORIES)
    dispatch_cli.register(sub)
    credit_cli.register(sub)

    sb = sub.add_parser("subscriptions", help="outside systems' durable queues, and replay")
    sbs = sb.add_subparsers(dest="action", required=True)
    add_sub = sbs.add_parser("add", help="create or update: a durable queue bound to routing patterns")
    add_sub.add_argument("name")
    add_sub.add_argument("patterns", nargs="+", help="e.g. incidents.incident.* credit.#")
    sbs.add_parser("list")
    rm = sbs.add_parser("remove", help="delete the subscription and its queues")
    rm.add_argument("name")
    rp = sbs.add_parser("replay", help="put stored events back into a subscription's queue, in order")
    rp.add_argument("name")
    rp.add_argument("--source", help="a service: grid, incidents, ... (needed with --from-sequence)")
    rp.add_argument("--from-sequence", type=int)
    rp.add_argument("--since", help="ISO 8601 time with zone, e.g. 2026-11-24T00:00:00+08:00")
    sb.set_defaults(func=cmd_subscriptions)

    ev = sub.add_parser("events", help="the event stream").add_subparsers(dest="action", required=True)
    tail = ev.add_parser("tail", help="print events as they pass")
    tail.add_argument("patterns", nargs="*", default=["#"])
    tail.add_argument("--data", action="store_true", help="print each payload too")
    tail.set_defaults(func=cmd_events_tail)

    h = sub.add_parser("health", help="exit 0 when a process answers its health check")
    h.add_argument("kind", choices=["grpc", "nameko"])
    h.add_argument("target", help="host:port for grpc, the service name for nameko")
    h.add_argument("--timeout", type=float, default=5.0)
    h.set_defaults(func=cmd_health)

    r = sub.add_parser("relay", help="run a service's outbox relay alone (nameko runs one already)")
    r.add_argument("schema")
    r.set_defaults(func=cmd_relay)
    return p


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except DomainError as exc:
        raise SystemExit(f"gridbus: {exc.code}: {exc.message}")


if __name__ == "__main__":
    main()
