"""Evaluation: digital urban management figures per department or per unit."""
from __future__ import annotations

from datetime import datetime

from services.dispatch import domain, store
from shared import auth, units
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import InvalidArgument

def evaluation(caller: Principal, start: datetime, end: datetime, *, group_by: str = "department",
               unit_code: str = "", department_code: str = "") -> list[tuple[str, dict]]:
    """Figures over tasks dispatched in [start, end): dispatched, acknowledged and resolved on
    time, closure and on-time closure rates, rework rate, mean hours to resolve. The last row,
    key "all", is the total."""
    if group_by not in domain.GROUPINGS:
        raise InvalidArgument(f"group_by must be one of {', '.join(domain.GROUPINGS)}")
    if start >= end:
        raise InvalidArgument("start must be before end")
    if caller.role == auth.DEPARTMENT:
        department_code = caller.member_id
    else:
        auth.require_role(caller, auth.DISPATCHER, auth.ADMIN, auth.SERVICE)
        if caller.role == auth.DISPATCHER and not unit_code:
            raise InvalidArgument("a dispatcher asks for a unit in their scope (unit_code)")
        if unit_code:
            domain.may_dispatch(caller, units.lineage(unit_code))
    index = domain.GROUPINGS.index(group_by)  # district is lineage[1], street [2], ...
    groups: dict[str, domain.Figures] = {}
    total = domain.Figures()
    with session_scope() as session:
        for row in store.tasks_dispatched_between(session, start, end, unit_code or None, department_code or None):
            facts = domain.TaskFacts(row.dispatched_at, row.ack_due_at, row.acknowledged_at, row.resolve_due_at,
                                     row.resolved_at, row.closed_at, row.reopened)
            key = row.department_code if index == 0 else (row.lineage[index] if len(row.lineage) > index else "-")
            groups.setdefault(key or "-", domain.Figures()).add(facts)
            total.add(facts)
    return [(k, groups[k].rates()) for k in sorted(groups)] + [("all", total.rates())]
