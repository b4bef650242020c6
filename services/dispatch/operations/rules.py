"""Departments and routing rules: the operator's set-up, from the API or the operator's file."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.dispatch import access, domain, store
from shared import access as shared_access
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import FailedPrecondition, InvalidArgument, NotFound


def upsert_department(caller: Principal, code: str, name: str, serves: list[str], contact: str = "") -> None:
    shared_access.permit(access.CONFIGURE, caller)
    domain.check_code(code, "department code")
    if not (name or "").strip():
        raise InvalidArgument("department name is required")
    if not serves:
        raise InvalidArgument("serves: one or more unit codes the department works in")
    for unit in serves:
        domain.check_unit(unit, "serves")
    domain.may_configure(caller, list(serves), f"department {code}")
    with session_scope() as session:
        before = store.department(session, code)
        if before is not None:  # nor may an admin take over another district's department
            domain.may_configure(caller, list(before.serves), f"department {code}")
        store.upsert_department(session, code, name.strip(), sorted(set(serves)), contact or "")


def list_departments(caller: Principal) -> list:
    shared_access.permit(access.READ_SETUP, caller)
    with session_scope() as session:
        return store.departments(session)


def _create_rule(session: Session, caller: Principal, r: domain.Rule) -> int:
    domain.check_rule(r.category_prefix, r.grid_code, r.ack_minutes, r.resolve_minutes, r.priority)
    if store.department(session, r.department_code) is None:
        raise NotFound(f"no department {r.department_code}")
    store.lock_rules(session)
    tie = domain.tie_with(r, store.active_rules(session))
    if tie is not None:
        raise FailedPrecondition(
            f"this rule would tie with rule {tie.id} (category {tie.category_prefix or 'any'}, grid "
            f"{tie.grid_code or 'anywhere'}, priority {tie.priority}, to {tie.department_code}); "
            "give one of them another priority to say which wins")
    return store.insert_rule(session, r, caller.member_id)


def create_rule(caller: Principal, *, category_prefix: str, grid_code: str, department_code: str, priority: int,
                ack_minutes: int, resolve_minutes: int, working_time: bool) -> domain.Rule:
    shared_access.permit(access.CONFIGURE, caller)
    domain.check_rule(category_prefix, grid_code, ack_minutes, resolve_minutes, priority)
    domain.may_configure(caller, [grid_code] if grid_code else None, "a rule for " + (grid_code or "anywhere"))
    with session_scope() as session:
        rule_id = _create_rule(session, caller, domain.Rule(0, category_prefix, grid_code, department_code, priority,
                                                            ack_minutes, resolve_minutes, working_time))
        return store.rule(session, rule_id)


def deactivate_rule(caller: Principal, rule_id: int) -> None:
    shared_access.permit(access.CONFIGURE, caller)
    with session_scope() as session:
        rule = store.rule(session, rule_id)
        if rule is not None:
            domain.may_configure(caller, [rule.grid_code] if rule.grid_code else None,
                                 f"rule {rule_id} (for {rule.grid_code or 'anywhere'})")
        if not store.deactivate_rule(session, rule_id):
            raise NotFound(f"no active rule {rule_id}")


def list_rules(caller: Principal) -> list[domain.Rule]:
    shared_access.permit(access.READ_SETUP, caller)
    with session_scope() as session:
        return store.active_rules(session)


def load_config(caller: Principal, doc: dict) -> tuple[int, int]:
    """The operator's file: departments upserted, and the active rules replaced by the file's,
    all or nothing. Returns (departments, rules)."""
    domain.may_configure(caller, None, "the whole dispatch set-up")
    if not isinstance(doc, dict):
        raise InvalidArgument("the dispatch file must be a mapping with departments and rules")
    departments, rules = doc.get("departments") or [], doc.get("rules") or []
    with session_scope() as session:
        for i, d in enumerate(departments):
            try:
                code, name, serves = d["code"], d["name"], d["serves"]
            except (KeyError, TypeError):
                raise InvalidArgument(f"department {i}: code, name and serves are required")
            domain.check_code(code, f"department {i} code")
            store.upsert_department(session, code, name, sorted(set(serves)), d.get("contact", ""))
        store.lock_rules(session)
        session.execute(text("UPDATE dispatch.rules SET active = false WHERE active"))
        for i, r in enumerate(rules):
            try:
                rule = domain.Rule(0, str(r.get("category", "")), str(r.get("grid", "")), r["department"],
                                   int(r.get("priority", 0)), int(r["ack_minutes"]), int(r["resolve_minutes"]),
                                   bool(r.get("working_time", False)))
            except (KeyError, TypeError, ValueError):
                raise InvalidArgument(f"rule {i}: department, ack_minutes and resolve_minutes are required")
            try:
                _create_rule(session, caller, rule)
            except (InvalidArgument, FailedPrecondition, NotFound) as exc:
                raise type(exc)(f"rule {i}: {exc.message}")
        return len(departments), len(rules)
