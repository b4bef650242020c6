"""`gridbus token|grid|member ...`: bearer tokens minted from members' assignments, GeoJSON
imports of grid units and registering members (operators, on the database)."""
from __future__ import annotations

import getpass
import json
import sys

from shared.auth import Principal, mint_token
from shared.cli import operator_principal, progress
from shared.errors import DomainError


def register(sub) -> None:
    t = sub.add_parser("token", help="mint a bearer token").add_subparsers(dest="action", required=True)
    mint = t.add_parser("mint", help="for a member (role and grids from the registry) or a service")
    mint.add_argument("--member", help="member id: role and scope come from their assignments")
    mint.add_argument("--role", choices=["officer", "dispatcher", "admin", "service", "department"])
    mint.add_argument("--subject", help="who the token is for, when not a member (e.g. dispatch-service)")
    mint.add_argument("--scope", nargs="*", help="unit codes, when not a member")
    mint.add_argument("--ttl", type=int, default=None, help="seconds (default GRIDBUS_TOKEN_TTL_SECONDS)")
    mint.set_defaults(func=token_mint)

    g = sub.add_parser("grid", help="grid units").add_subparsers(dest="action", required=True)
    imp = g.add_parser("import", help="upsert units from a GeoJSON FeatureCollection, all or nothing")
    imp.add_argument("file", help="path, or - for stdin")
    imp.set_defaults(func=grid_import)

    m = sub.add_parser("member", help="grid members").add_subparsers(dest="action", required=True)
    add = m.add_parser("add", help="register a member and assign them (first --grid is primary)")
    add.add_argument("--name", required=True)
    add.add_argument("--phone", required=True)
    add.add_argument("--role", required=True, choices=["officer", "dispatcher", "admin"])
    add.add_argument("--grid", nargs="+", required=True, help="unit codes")
    add.set_defaults(func=member_add)


def token_mint(args) -> None:
    if args.member:
        from services.grid import operations as ops
        member = ops.get_member(operator_principal(), args.member)
        if not member.active:
            raise DomainError(f"member {args.member} is inactive")
        role, scope = member.role, [code for code, _, _ in member.assignments]
        subject = member.id
    else:
        if not (args.role and args.subject):
            raise SystemExit("give --member ID, or --role, --subject and --scope for a non-member caller")
        role, scope, subject = args.role, args.scope or [], args.subject
    print(mint_token(subject, role, scope, ttl_seconds=args.ttl))


def grid_import(args) -> None:
    from services.grid import domain, operations as ops
    raw = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
    doc = json.loads(raw)
    total = len(domain.parse_feature_collection(doc))
    with progress(total, "importing", "features") as advance:
        result = ops.import_units(operator_principal(), doc, advance)
    print(f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}")


def member_add(args) -> None:
    from services.grid import operations as ops
    admin = Principal(member_id=f"cli:{getpass.getuser()}", role="admin", scope=tuple(args.grid))
    member = ops.create_member(admin, args.name, args.phone, args.role)
    for i, code in enumerate(args.grid):
        member = ops.assign_member(admin, member.id, code, primary=(i == 0))
    print(member.id)
