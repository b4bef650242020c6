"""Who may call what: the vocabulary of the services' access tables.

Each service declares, in services/<svc>/access.py, one `Rule` per operation (which roles may
call it, and for each role the scope rule that applies to the object it touches) and a `Table`
naming the rule of every gRPC method, nameko RPC and HTTP route. The entry points check the role
from the table before anything else (shared/grpc_support.py for gRPC, `rpc` below for nameko);
the operations check the object against the same rule (`require`), since only they know where
the object lies. tests/authz generate their matrix from the same tables, and docs/security.md's
role table is printed from them (`markdown`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from shared import auth, units
from shared.auth import Principal
from shared.errors import DomainError, PermissionDenied

# Scope rules: what the object an entry point touches must be, for a caller of a role.
ANY = "any"                    # no object rule: the role suffices (or the object is public)
OWN_GRIDS = "own grids"        # the object's unit lies in the subtrees of the caller's scope
OWN_DISTRICT = "own district"  # the same, for an admin's district: every unit the object touches
CITYWIDE = "citywide"          # the caller's scope holds a whole city (a service always does)
OWN_RECORD = "own record"      # the object is the caller's own (their member id, their department)
NOT_PERSONAL = "not personal"  # only what is about no person (enterprises, what is published)
SCOPES = (ANY, OWN_GRIDS, OWN_DISTRICT, CITYWIDE, OWN_RECORD, NOT_PERSONAL)

ROLES = (*auth.ROLES, auth.PUBLIC)


@dataclass(frozen=True)
class Rule:
    """roles: role -> scope rule; a role not in it is refused. `what` says what it is for."""
    what: str
    roles: Mapping[str, str]

    def __post_init__(self):
        for role, scope in self.roles.items():
            if role not in ROLES or scope not in SCOPES:
                raise ValueError(f"rule {self.what!r}: unknown role {role!r} or scope {scope!r}")

    @property
    def public(self) -> bool:
        return auth.PUBLIC in self.roles


def allow(what: str, **roles: str) -> Rule:
    return Rule(what, dict(roles))


@dataclass(frozen=True)
class Table:
    """A service's entry points. http keys are 'METHOD /path' as the router declares them."""
    service: str
    grpc: Mapping[str, Rule] = field(default_factory=dict)
    rpc: Mapping[str, Rule] = field(default_factory=dict)
    http: Mapping[str, Rule] = field(default_factory=dict)

    def rows(self) -> Iterable[tuple[str, str, Rule]]:
        for kind in ("grpc", "rpc", "http"):
            for name, rule in getattr(self, kind).items():
                yield kind, name, rule


def permit(rule: Rule | None, p: Principal, entry: str = "") -> None:
    """The entry point's check: the caller's role is in its row. No row: nobody may call it."""
    if rule is None:
        raise PermissionDenied(f"{entry or 'this'} is not declared in the access table")
    if p.role not in rule.roles:
        raise PermissionDenied(f"role {p.role} may not {rule.what} (needs {' or '.join(rule.roles)})")


def citywide(p: Principal) -> bool:
    return p.role == auth.SERVICE or any(_is_city(c) for c in p.scope)


def _is_city(code: str) -> bool:
    try:
        return units.level_of(code) == units.CITY
    except DomainError:
        return False


def require(rule: Rule, p: Principal, *, units_: Iterable[str] | None = None, owner: str | None = None,
            what: str = "this", any_unit: bool = False, personal: bool = False) -> None:
    """The operation's check of its object, by the caller's role's scope rule.

    units_: the unit codes the object lies in or touches; every one must be in the caller's
    scope. None means the whole city (a rule for anywhere, figures without a unit): only a
    citywide caller. any_unit: one of units_ in scope suffices (reading something that spans
    districts), and none at all is refused. owner: the member id or department code the object
    belongs to. personal: the object is about a person (refused to NOT_PERSONAL roles)."""
    permit(rule, p)
    scope = rule.roles[p.role]
    if scope == ANY or p.role == auth.SERVICE:
        return
    if scope == NOT_PERSONAL:
        if personal:
            raise PermissionDenied(f"{what} is personal: role {p.role} reads only what is about no person")
        return
    if scope == OWN_RECORD:
        if owner is None or owner != p.member_id:
            raise PermissionDenied(f"{what} is not yours")
        return
    if scope == CITYWIDE or units_ is None:
        if not citywide(p):
            raise PermissionDenied(f"{what} is citywide: it needs a caller whose scope is a whole city")
        if scope == CITYWIDE:
            return
    codes = list(units_ or ())
    inside = [c for c in codes if p.covers(units.lineage(c))]
    if inside if any_unit else len(inside) == len(codes):
        return
    outside = next((c for c in codes if c not in inside), None)
    raise PermissionDenied(f"{what} is outside your {'district' if scope == OWN_DISTRICT else 'grids'}"
                           + (f" ({outside})" if outside else ""))


def scope_of(rule: Rule, p: Principal) -> str:
    permit(rule, p)
    return rule.roles[p.role]


# --- entry points ---------------------------------------------------------------------------

def rpc(method: Callable) -> Callable:
    """nameko's `@rpc(expected_exceptions=DomainError)`, checking the caller's role against the
    service class's `access` table first (a public row needs no token)."""
    from nameko.rpc import rpc as nameko_rpc

    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        rule = type(self).access.rpc.get(method.__name__)
        if rule is None or not rule.public:
            permit(rule, self.caller(), method.__name__)
        return method(self, *args, **kwargs)

    checked.access_checked = True
    return nameko_rpc(expected_exceptions=DomainError)(checked)


def declared(table: Table, kind: str, entry: str) -> Rule:
    """The row of an entry point an app is about to expose: an undeclared one stops the app's
    construction, so nothing is served that the table does not name."""
    try:
        return getattr(table, kind)[entry]
    except KeyError:
        raise LookupError(f"{table.service}: {kind} {entry!r} has no row in services/{table.service}/access.py")


def markdown(tables: Iterable[Table]) -> str:
    """The role table of docs/security.md: one line per entry point, a column per role."""
    head = "| service | entry point | what | " + " | ".join(ROLES) + " |"
    lines = [head, "|" + "---|" * (3 + len(ROLES))]
    for table in tables:
        for kind, name, rule in table.rows():
            cells = " | ".join(rule.roles.get(role, "-") for role in ROLES)
            lines.append(f"| {table.service} | {kind} `{name}` | {rule.what} | {cells} |")
    return "\n".join(lines) + "\n"
