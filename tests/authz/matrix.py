"""The authorization matrix, generated from the services' access tables (services/<svc>/access.py):
every entry point x every role x in and out of its scope.

A `Sample` is one real request per entry point, aimed at an object the test world put in
district A (330102): its unit, and its owner (a member id or a department code). Each cell
calls it with a token that differs from an allowed one only in what the cell tests:

- a role the row does not name: a citywide token with the object's owner as member id, so
  nothing but the role can be why it is PERMISSION_DENIED;
- an allowed role, in scope: its scope rule satisfied, and another member id unless the rule
  is OWN_RECORD (so no one reads or acts as themselves by accident) (district A, the city for CITYWIDE, the
  owner's id for OWN_RECORD); the answer may be anything but PERMISSION_DENIED (NOT_FOUND,
  FAILED_PRECONDITION, ABORTED are honest answers to a replayed request), and never
  UNAUTHENTICATED, INTERNAL or UNKNOWN;
- an allowed role, out of scope: the rule broken (district B, a district for CITYWIDE, another
  id for OWN_RECORD): PERMISSION_DENIED. A role whose rule is ANY, and the service role (always
  citywide), have no out-of-scope cell.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from shared import access
from shared.access import ANY, CITYWIDE, NOT_PERSONAL, OWN_DISTRICT, OWN_GRIDS, OWN_RECORD, Table
from shared.auth import ROLES, SERVICE
from tests.support import token

CITY, DISTRICT_A, DISTRICT_B = "330100", "330102", "330103"
GRID_A, GRID_A2, GRID_B = "330102001001001", "330102001001002", "330103001001001"
STRANGER = "someone-else"


@dataclass
class Sample:
    request: Callable[[Any], Any]         # world -> the request (a message, or the RPC's kwargs)
    owner: Callable[[Any], str] = lambda w: STRANGER  # world -> whose object it is
    unit: str = DISTRICT_A                # where it lies
    # role -> world -> the request that role sends (the action a role takes, when roles differ)
    by_role: dict = field(default_factory=dict)
    # world -> a request about no person: what a NOT_PERSONAL role sends in scope (`request` is
    # about a person, its out-of-scope cell)
    not_personal: Callable[[Any], Any] | None = None
    # roles whose answer is filtered to their own (a department's list), or refused item by item
    # in the answer (a batch): the call itself is never out of scope, so they have no such cell
    filtered: frozenset = frozenset()

    def request_for(self, role: str, case: str, scope: str | None, world):
        if scope == NOT_PERSONAL and case == "in scope":
            return self.not_personal(world)
        return self.by_role.get(role, self.request)(world)


@dataclass(frozen=True)
class Cell:
    service: str
    kind: str        # grpc, rpc, http
    entry: str
    role: str
    case: str        # "denied role", "in scope", "out of scope"

    @property
    def id(self) -> str:
        return f"{self.service}.{self.entry}-{self.role}-{self.case.replace(' ', '_')}"


@dataclass
class Call:
    """What a cell sends: a token and whether PERMISSION_DENIED is expected."""
    bearer: str
    denied: bool
    extra: dict = field(default_factory=dict)


def cells(table: Table, kind: str, samples: dict | None = None) -> list[Cell]:
    out = []
    for entry, rule in getattr(table, kind).items():
        filtered = samples[entry].filtered if samples and entry in samples else frozenset()
        if rule.public:
            continue  # anyone may call it: nothing to refuse
        for role in ROLES:
            scope = rule.roles.get(role)
            if scope is None:
                out.append(Cell(table.service, kind, entry, role, "denied role"))
                continue
            out.append(Cell(table.service, kind, entry, role, "in scope"))
            if scope != ANY and role != SERVICE and role not in filtered:
                out.append(Cell(table.service, kind, entry, role, "out of scope"))
    return out


def call_for(table: Table, cell: Cell, sample: Sample, world) -> Call:
    owner = sample.owner(world)
    if cell.case == "denied role":
        return Call(token(cell.role, CITY, member_id=owner), True)
    scope = getattr(table, cell.kind)[cell.entry].roles[cell.role]
    inside = cell.case == "in scope"
    if scope == NOT_PERSONAL:
        return Call(token(cell.role, CITY, member_id=STRANGER), not inside)
    if scope == OWN_RECORD:
        return Call(token(cell.role, sample.unit, member_id=owner if inside else STRANGER), not inside)
    if scope == CITYWIDE:
        return Call(token(cell.role, CITY if inside else sample.unit, member_id=STRANGER), not inside)
    if scope in (OWN_GRIDS, OWN_DISTRICT):
        other = DISTRICT_B if sample.unit.startswith(DISTRICT_A) else DISTRICT_A
        return Call(token(cell.role, sample.unit if inside else other, member_id=STRANGER), not inside)
    return Call(token(cell.role, sample.unit, member_id=STRANGER), False)  # ANY


def every_cell(tables: list[Table], kind: str, samples: dict | None = None) -> list[Cell]:
    return [c for t in tables for c in cells(t, kind, (samples or {}).get(t.service))]


def rule_of(table: Table, cell: Cell) -> access.Rule:
    return getattr(table, cell.kind)[cell.entry]
