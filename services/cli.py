"""`gridbus`: the operators' command line. `gridbus --help` lists the commands.

The platform's commands are here (migrate, events, health, relay, levels, broker); every service in
services/registry.py with a `cli` module adds its own with that module's register(subparsers)."""
from __future__ import annotations

import argparse
import importlib
import json
import warnings

# nameko's eventlet import warns on every command; operators need not see it.
warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")

from services import registry  # noqa: E402
from shared.errors import DomainError  # noqa: E402


def cmd_migrate(args) -> None:
    registry.migrate()
    print("migrated")


def cmd_health(args) -> None:
    from shared import health
    from shared.config import settings
    try:
        if args.kind == "grpc":
            health.check_grpc(args.target, args.timeout, server_name=args.server_name)
        else:
            health.check_nameko(settings().amqp_uri, args.target, args.timeout)
    except Exception as exc:
        raise SystemExit(f"{args.target}: not serving: {exc}")
    print("SERVING")


def cmd_relay(args) -> None:
    from shared.outbox import main
    main([args.schema])


def cmd_events_tail(args) -> None:
    """Prints events as they pass, from a temporary queue (nothing is taken from anyone)."""
    import kombu

    from shared import tls
    from shared.outbox import events_exchange

    def show(message):
        e = json.loads(message.body)
        print(f"{e['time']} {e['type']:<34} {e['subject']:<48} seq {e['sequence']}", flush=True)
        if args.data:
            print("   ", json.dumps(e["data"], ensure_ascii=False), flush=True)
        message.ack()

    with tls.amqp_connection() as conn:
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


def cmd_levels(args) -> None:
    """Three levels (shared/levels.py): this deployment's gridbus.levels, and its children's links."""
    from shared import levels
    from shared.config import settings

    s = settings()
    vhost = levels.vhost_of(s.amqp_uri)
    with levels.Management(s.broker_management_url) as api:
        if args.action == "setup":
            api.apply(levels.setup_plan(vhost))
            print(f"{levels.LEVELS_EXCHANGE} carries this deployment's events (vhost {vhost})")
        elif args.action == "link":
            api.apply(levels.link_plan(vhost, args.child, args.uri))
            print(f"federating {levels.LEVELS_EXCHANGE} from {args.child} at {levels.redact_uri(args.uri)}")
        elif args.action == "unlink":
            api.apply(levels.unlink_plan(vhost, args.child))
            print(f"no longer federating from {args.child}")
        else:
            links = {link.get("upstream"): link for link in api.links(vhost)}
            for upstream in api.upstreams(vhost):
                link = links.get(upstream["name"], {})
                print(f"{upstream['name']:<24} {link.get('status', 'no link'):<10} "
                      f"{levels.redact_uri(upstream['value']['uri'])} {link.get('error', '')}")


def cmd_tls_dev_certs(args) -> None:
    """A development CA and certificates (shared/pki.py); never for production."""
    from pathlib import Path

    from shared.pki import dev_certs
    written = dev_certs(Path(args.directory), args.host, args.client or ["gridbus-client"], args.days)
    for name, path in written.items():
        print(f"{name:<24} {path}")


def cmd_broker_users(args) -> None:
    """Each service's broker user and permissions (shared/broker_users.py), through the management
    API. Passwords come from GRIDBUS_AMQP_URI_<SERVICE>; a user without one gets a new password,
    printed once as the URI to give that service as its GRIDBUS_AMQP_URI."""
    import os

    from shared import broker_users
    from shared.config import settings

    s = settings()
    try:
        uris = broker_users.provision(s.broker_management_url, s.amqp_uri)
    except ValueError as exc:
        raise SystemExit(f"gridbus broker users: {exc}")
    for name, uri in uris.items():
        user = broker_users.credentials(uri)[0]
        if os.environ.get(name):
            print(f"{user}: permissions set (vhost {broker_users.vhost_of(s.amqp_uri)})")
        else:
            print(f"{name}={uri}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridbus", description="Operate gridbus.")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="create or upgrade every service's schema").set_defaults(func=cmd_migrate)

    for service in registry.SERVICES:
        if service.cli:
            importlib.import_module(service.cli).register(sub)

    ev = sub.add_parser("events", help="the event stream").add_subparsers(dest="action", required=True)
    tail = ev.add_parser("tail", help="print events as they pass")
    tail.add_argument("patterns", nargs="*", default=["#"])
    tail.add_argument("--data", action="store_true", help="print each payload too")
    tail.set_defaults(func=cmd_events_tail)

    h = sub.add_parser("health", help="exit 0 when a process answers its health check")
    h.add_argument("kind", choices=["grpc", "nameko"])
    h.add_argument("target", help="host:port for grpc, the service name for nameko")
    h.add_argument("--timeout", type=float, default=5.0)
    h.add_argument("--server-name", help="grpc over TLS: the name the server's certificate must have, when it is "
                                        "not the target's host (a probe dialling 127.0.0.1)")
    h.set_defaults(func=cmd_health)

    lv = sub.add_parser("levels", help="county, city and province deployments: federate events upward")
    lv_sub = lv.add_subparsers(dest="action", required=True)
    lv_sub.add_parser("setup", help="make gridbus.levels carry this deployment's events").set_defaults(func=cmd_levels)
    link = lv_sub.add_parser("link", help="at a parent: receive a child deployment's events (and its children's)")
    link.add_argument("child", help="the child deployment's name, e.g. its division code")
    link.add_argument("uri", help="the child's broker: amqp(s)://user:password@host:port/vhost")
    link.set_defaults(func=cmd_levels)
    unlink = lv_sub.add_parser("unlink", help="stop receiving a child's events")
    unlink.add_argument("child")
    unlink.set_defaults(func=cmd_levels)
    lv_sub.add_parser("status", help="each child's link and its state").set_defaults(func=cmd_levels)

    t = sub.add_parser("tls", help="certificates").add_subparsers(dest="action", required=True)
    dc = t.add_parser("dev-certs", help="a development CA (kept if the directory has one), a server certificate "
                                        "for localhost and --host, and client certificates; not for production")
    dc.add_argument("directory")
    dc.add_argument("--host", action="append", default=[], help="another name or address the server is dialled by")
    dc.add_argument("--client", action="append", default=None,
                    help="a client certificate's name (mutual TLS); default gridbus-client")
    dc.add_argument("--days", type=int, default=825)
    dc.set_defaults(func=cmd_tls_dev_certs)

    br = sub.add_parser("broker", help="the broker's users").add_subparsers(dest="action", required=True)
    br.add_parser("users", help="create or update each service's broker user and its permissions "
                  "(GRIDBUS_BROKER_MANAGEMENT_URL, in GRIDBUS_AMQP_URI's vhost)").set_defaults(func=cmd_broker_users)

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
