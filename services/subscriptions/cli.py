"""`gridbus subscriptions ...`: organisations outside gridbus, their durable queues, and replay
(operators, on the database and the broker, for any organisation)."""
from __future__ import annotations

from datetime import datetime

from shared.cli import operator_principal
from shared.privacy import GRANTS


def register(sub) -> None:
    sb = sub.add_parser("subscriptions", help="organisations' filtered event queues, and replay")
    sbs = sb.add_subparsers(dest="action", required=True)
    org = sbs.add_parser("org", help="register or update an organisation: the scope and grants it may have")
    org.add_argument("id", help="3-63 of a-z 0-9 _ -: its subscriber token's member id")
    org.add_argument("--name", default="")
    org.add_argument("--scope", nargs="+", help="unit codes, e.g. 330106 (a city's code: all); "
                     "needed for a new one, else kept")
    org.add_argument("--grant", nargs="*", choices=GRANTS,
                     help="kinds of personal fields (kept when left out; --grant alone: none)")
    org.add_argument("--deactivate", action="store_true", help="refuse its tokens and deliver it nothing")
    sbs.add_parser("orgs", help="list organisations")
    tok = sbs.add_parser("token", help="mint an organisation's subscriber token, with its registered scope")
    tok.add_argument("id")
    tok.add_argument("--ttl", type=int, help="seconds (default GRIDBUS_TOKEN_TTL_SECONDS)")
    add_sub = sbs.add_parser("add", help="create or update an organisation's subscription")
    add_sub.add_argument("organisation")
    add_sub.add_argument("name")
    add_sub.add_argument("patterns", nargs="+", help="e.g. incidents.incident.* credit.#")
    add_sub.add_argument("--scope", nargs="+", help="unit codes within the organisation's (default: all of its)")
    add_sub.add_argument("--grant", nargs="*", default=[], choices=GRANTS)
    ls = sbs.add_parser("list")
    ls.add_argument("--org", help="only this organisation's")
    rm = sbs.add_parser("remove", help="delete the subscription and its queues")
    rm.add_argument("organisation")
    rm.add_argument("name")
    rp = sbs.add_parser("replay", help="put stored events back into a subscription's queue, in order, filtered")
    rp.add_argument("organisation")
    rp.add_argument("name")
    rp.add_argument("--source", help="a service: grid, incidents, ... (needed with --from-sequence)")
    rp.add_argument("--from-sequence", type=int)
    rp.add_argument("--since", help="ISO 8601 time with zone, e.g. 2026-11-24T00:00:00+08:00")
    sb.set_defaults(func=subscriptions)


def subscriptions(args) -> None:
    from services.subscriptions import operations as subs
    from services.subscriptions import organisations as orgs

    me = operator_principal().member_id
    if args.action == "org":
        o = orgs.operator_register(me, args.id, args.name, args.scope, args.grant, active=not args.deactivate)
        print(f"{o.id}: scope {' '.join(o.scope)}; grants {' '.join(o.grants) or '-'}"
              f"{'' if o.active else ' (deactivated)'}")
    elif args.action == "orgs":
        for o in orgs.operator_list():
            print(f"{o.id:<24} {'active' if o.active else 'off':<7} {' '.join(o.scope) or '-':<24} "
                  f"{' '.join(o.grants) or '-':<40} {o.name}")
    elif args.action == "token":
        print(orgs.operator_token(args.id, args.ttl))
    elif args.action == "add":
        v = subs.operator_subscribe(me, args.organisation, args.name, args.patterns, args.scope, args.grant)
        print(f"{v.organisation}/{v.name}: queue {v.queue} (dead letters: {v.dead_letter_queue}) <- "
              f"{' '.join(v.patterns)}; scope {' '.join(v.scope)}; grants {' '.join(v.grants) or '-'}")
    elif args.action == "list":
        for v in subs.operator_list(args.org):
            print(f"{v.organisation:<20} {v.name:<24} {v.queue:<44} {' '.join(v.patterns)}  "
                  f"[{' '.join(v.scope) or '-'}] [{' '.join(v.grants) or '-'}]")
    elif args.action == "remove":
        subs.operator_unsubscribe(args.organisation, args.name)
        print(f"removed {args.organisation}/{args.name}")
    else:
        since = datetime.fromisoformat(args.since) if args.since else None
        n = subs.operator_replay(me, args.organisation, args.name, source=args.source,
                                 from_sequence=args.from_sequence, since=since)
        print(f"replayed {n} events into {args.organisation}/{args.name}")
