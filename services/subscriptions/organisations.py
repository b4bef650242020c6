"""Organisations outside gridbus that subscribe to its events: each has the scope it may subscribe
to (unit codes) and the kinds of personal fields it may receive. An admin registers those of their
own district: every code of the scope within the admin's, and an organisation already registered
with a scope reaching outside it is another district's to change. Operators (the command line)
register any, and mint an organisation's subscriber token with its scope."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.subscriptions import domain, filtering, store
from shared import auth
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import InvalidArgument, NotFound, PermissionDenied


@dataclass
class OrganisationView:
    id: str
    name: str
    scope: list[str]
    grants: list[str]
    active: bool
    registered_by: str
    registered_at: datetime


def _view(row) -> OrganisationView:
    return OrganisationView(row.id, row.name, list(row.scope), list(row.grants), row.active, row.registered_by,
                            row.registered_at)


def active_organisation(session, org_id: str):
    """The organisation's row; PERMISSION_DENIED when it is unknown or deactivated, so its
    subscriber tokens stop working the moment it is."""
    row = store.organisation(session, org_id)
    if row is None or not row.active:
        raise PermissionDenied(f"organisation {org_id} is not registered, or deactivated")
    return row


def _in_admins_district(caller: Principal, codes: list[str], what: str) -> None:
    wider = filtering.within(codes, caller.scope)
    if wider:
        raise PermissionDenied(f"{what} {', '.join(wider)} is outside your district")


def register(caller: Principal, org_id: str, name: str, scope: list[str], grants: list[str],
             active: bool = True) -> OrganisationView:
    """Registers or updates an organisation (admins, within their district)."""
    auth.require_role(caller, auth.ADMIN)
    org_id, scope, grants = domain.check_organisation(org_id), filtering.check_scope(scope), \
        filtering.check_grants(grants)
    _in_admins_district(caller, scope, "scope")
    with session_scope() as session:
        before = store.organisation(session, org_id)
        if before is not None:
            _in_admins_district(caller, list(before.scope), f"organisation {org_id}'s scope")
        store.upsert_organisation(session, org_id, name.strip(), scope, grants, active, caller.member_id)
        return _view(store.organisation(session, org_id))


def list_(caller: Principal) -> list[OrganisationView]:
    """The organisations whose whole scope lies in the admin's district."""
    auth.require_role(caller, auth.ADMIN)
    with session_scope() as session:
        return [_view(r) for r in store.organisations(session)
                if r.scope and not filtering.within(list(r.scope), caller.scope)]


def operator_register(by: str, org_id: str, name: str = "", scope: list[str] | None = None,
                      grants: list[str] | None = None, active: bool = True) -> OrganisationView:
    """Registers or updates any organisation; on an update, scope and grants left out (None) stay."""
    org_id = domain.check_organisation(org_id)
    with session_scope() as session:
        before = store.organisation(session, org_id)
        if scope is None and before is None:
            raise InvalidArgument(f"organisation {org_id} is new: give its scope")
        scope = list(before.scope) if scope is None else filtering.check_scope(scope)
        grants = list(before.grants) if grants is None and before else filtering.check_grants(grants or [])
        store.upsert_organisation(session, org_id, name.strip(), scope, grants, active, by)
        return _view(store.organisation(session, org_id))


def operator_list() -> list[OrganisationView]:
    with session_scope() as session:
        return [_view(r) for r in store.organisations(session)]


def operator_token(org_id: str, ttl_seconds: int | None = None) -> str:
    """A subscriber token for the organisation, carrying its registered scope."""
    with session_scope() as session:
        row = store.organisation(session, domain.check_organisation(org_id))
    if row is None:
        raise NotFound(f"no organisation {org_id}")
    if not row.active:
        raise PermissionDenied(f"organisation {org_id} is deactivated")
    return auth.mint_token(row.id, auth.SUBSCRIBER, row.scope, ttl_seconds=ttl_seconds)
