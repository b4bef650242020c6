"""Evaluation: digital urban management figures per department, unit or day, counted the
standard's way (services/dispatch/evaluation_rules.py), with the composite index."""
from __future__ import annotations

import functools
from datetime import datetime
from zoneinfo import ZoneInfo

import yaml

from services.dispatch import access, domain, evaluation_rules, store
from services.dispatch.operations.changes import CONFIG_DIR, calendar
from shared import access as shared_access, auth, units
from shared.auth import Principal
from shared.config import settings
from shared.db import session_scope
from shared.errors import InvalidArgument


@functools.lru_cache(maxsize=1)
def weights() -> evaluation_rules.Weights:
    """The operator's index weights, checked when loaded (a bad file stops the service)."""
    with open(settings().dispatch_evaluation or CONFIG_DIR / "evaluation.yaml", encoding="utf-8") as f:
        return evaluation_rules.parse_weights(yaml.safe_load(f))


def formula() -> str:
    return weights().formula()


def evaluation(caller: Principal, start: datetime, end: datetime, *, group_by: str = "department",
               unit_code: str = "", department_code: str = "") -> list[tuple[str, dict]]:
    """Figures over tasks dispatched in [start, end) (evaluation_rules: voided out of the
    denominators, parked, returns, rework, supervised, extended, handling hours less pauses,
    the composite index). A department's figures count its own tasks, assisting ones too; the
    units' and days' count each case once (its lead task). The last row, key "all", is the total."""
    if group_by not in domain.GROUPINGS:
        raise InvalidArgument(f"group_by must be one of {', '.join(domain.GROUPINGS)}")
    if start >= end:
        raise InvalidArgument("start must be before end")
    if unit_code:
        units.level_of(unit_code)
    if shared_access.scope_of(access.EVALUATION, caller) == shared_access.OWN_RECORD:
        shared_access.require(access.EVALUATION, caller, owner=department_code or caller.member_id,
                              what=f"the figures of department {department_code}")
        department_code = caller.member_id  # a department: its own figures
    elif caller.role == auth.DISPATCHER and not unit_code:
        raise InvalidArgument("a dispatcher asks for a unit in their scope (unit_code)")
    else:  # no unit: the whole city, for a citywide caller only
        shared_access.require(access.EVALUATION, caller, units_=[unit_code] if unit_code else None,
                              what=f"the figures of {unit_code or 'the whole city'}")
    cal, w = calendar(), weights()
    zone = ZoneInfo(cal.timezone)
    groups: dict[str, evaluation_rules.Figures] = {}
    total = evaluation_rules.Figures()

    def keys(row, department: str | None) -> str:
        if group_by == "department":
            return department or "-"
        if group_by == "day":
            return row.dispatched_at.astimezone(zone).date().isoformat()
        index = domain.GROUPINGS.index(group_by)  # district is lineage[1], street [2], ...
        return row.lineage[index] if len(row.lineage) > index else "-"

    with session_scope() as session:
        rows = store.tasks_dispatched_between(session, start, end, unit_code or None, department_code or None)
    for row in rows:
        if group_by != "department" and row.lead_task_id is not None:
            continue
        if not department_code or row.department_code == department_code:
            facts = evaluation_rules.TaskFacts(
                row.dispatched_at, row.ack_due_at, row.acknowledged_at, row.resolve_due_at, row.resolved_at,
                row.closed_at, row.reopened, row.status, row.returned, row.paused_minutes, row.extended_minutes,
                row.supervised, cal.between(row.dispatched_at, row.resolved_at) if row.resolved_at else None)
            groups.setdefault(keys(row, row.department_code), evaluation_rules.Figures()).add(facts)
            total.add(facts)
        for returner in row.returned_by:
            if department_code and returner != department_code:
                continue
            groups.setdefault(keys(row, returner), evaluation_rules.Figures()).add_return()
            total.add_return()
    return [(k, groups[k].rates(w)) for k in sorted(groups)] + [("all", total.rates(w))]
