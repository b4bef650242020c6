"""`gridbus token|grid|member ...`: bearer tokens minted from members' assignments, imports of
grid units from boundary files and registering members (operators, on the database)."""
from __future__ import annotations

import getpass
from collections import Counter

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
    keygen = t.add_parser("keygen", help="a new Ed25519 key pair for GRIDBUS_TOKEN_KEY (docs/security.md: rotation)")
    keygen.add_argument("--key-id", required=True, help="the new key's id, e.g. tokens-2026-11 (the tokens' kid)")
    keygen.set_defaults(func=token_keygen)
    t.add_parser("public-key", help="the public key of GRIDBUS_TOKEN_KEY, for GRIDBUS_TOKEN_VERIFY_KEYS"
                 ).set_defaults(func=token_public_key)

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
                                   "(e.g. EPSG:4547)")
    imp.add_argument("--layer", help="the layer of a file with several (GeoPackage)")
    imp.add_argument("--encoding", help="the attribute encoding of a Shapefile without a .cpg (e.g. GBK)")
    imp.add_argument("--show", type=int, default=50, metavar="N",
                     help="adjustments listed, the largest first (default 50; 0: all)")
    imp.set_defaults(func=grid_import)
    pw = g.add_parser("set-password", help="set a member's password (and user name) for sign-in; ends their sessions")
    pw.add_argument("--member", required=True, help="member id")
    pw.add_argument("--username", help="a user name to sign in with besides the phone number")
    how = pw.add_mutually_exclusive_group()
    how.add_argument("--generate", action="store_true", help="make a random password and print it")
    how.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    pw.set_defaults(func=grid_set_password)

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


def token_keygen(args) -> None:
    from shared.auth import generate_key, public_key_text
    private = generate_key(args.key_id)
    print(f"GRIDBUS_TOKEN_KEY={private}")
    print(f"# its public key, for GRIDBUS_TOKEN_VERIFY_KEYS during a rotation: {public_key_text(private)}")


def token_public_key(args) -> None:
    from shared.auth import public_key_text
    from shared.config import settings
    print(public_key_text(settings().token_key))


def grid_set_password(args) -> None:
    import secrets
    import sys
    from services.grid import signin
    if args.generate:
        password = secrets.token_urlsafe(12)
    elif args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            raise SystemExit("gridbus: the passwords differ")
    signin.set_password(operator_principal(), args.member, password, args.username)
    print(password if args.generate else "password set")


def grid_import(args) -> None:
    from services.grid import boundary_files, domain, operations as ops
    options = domain.ImportOptions(args.tolerance_m, args.repair, args.code_field, args.name_field)
    source = boundary_files.read(args.file, layer=args.layer, crs=args.crs, encoding=args.encoding)
    features = source.feature_collection.get("features")
    with progress(len(features) if isinstance(features, list) else 0, "importing", "features") as advance:
        result = ops.import_units(operator_principal(), source.feature_collection, advance, options)
    print(import_summary(result, source.crs_name, args.show))


def import_summary(result, crs_name: str, show: int) -> str:
    """What an import did, for the operator: counts, then what the tolerance let it adjust, per
    feature, the largest first."""
    lines = [f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}",
             f"coordinates read as {crs_name}"]
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


def member_add(args) -> None:
    from services.grid import operations as ops
    admin = Principal(member_id=f"cli:{getpass.getuser()}", role="admin", scope=tuple(args.grid))
    member = ops.create_member(admin, args.name, args.phone, args.role)
    for i, code in enumerate(args.grid):
        member = ops.assign_member(admin, member.id, code, primary=(i == 0))
    print(member.id)
