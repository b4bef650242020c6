"""`gridbus subscriptions ...`: outside systems' durable queues, and replay (operators, on the
database and the broker)."""
from __future__ import annotations

from datetime import datetime

from shared.cli import operator_principal


def register(sub) -> None:
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
    sb.set_defaults(func=subscriptions)


def subscriptions(args) -> None:
    from services.subscriptions import operations as subs

    me = operator_principal()
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
