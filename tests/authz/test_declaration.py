"""Nothing is undeclared: every gRPC method and nameko RPC of every service has a row in its
access table (and only those), every entry point checks it, and docs/security.md prints it."""
from __future__ import annotations

import importlib
import inspect

import pytest
from google.protobuf import descriptor_pool
from nameko.rpc import Rpc

from scripts import access_table
from services import registry
from shared import access

DECLARED = {t.service: t for t in access_table.tables()}
GRPC = [s for s in registry.SERVICES if s.grpc and s.name in DECLARED]
NAMEKO = [s for s in registry.SERVICES if s.nameko and s.name in DECLARED]


def _servicer(module):
    return next(cls for _, cls in inspect.getmembers(module, inspect.isclass)
                if cls.__module__ == module.__name__ and cls.__name__.endswith("Servicer"))


@pytest.mark.parametrize("service", GRPC, ids=[s.name for s in GRPC])
def test_every_grpc_method_has_exactly_one_row(service):
    module = importlib.import_module(service.grpc)
    methods = {m.name for m in descriptor_pool.Default().FindServiceByName(module.SERVICE_NAME).methods}
    servicer = _servicer(module)
    assert servicer.access is DECLARED[service.name]
    assert set(servicer.access.grpc) == methods, "rows without a method, or methods without a row"
    for name in methods:  # each goes through unary/server_stream, which check the row
        assert hasattr(getattr(servicer, name), "__wrapped__"), name


@pytest.mark.parametrize("service", NAMEKO, ids=[s.name for s in NAMEKO])
def test_every_nameko_rpc_has_exactly_one_row(service):
    module = importlib.import_module(service.nameko)
    cls = next(c for _, c in inspect.getmembers(module, inspect.isclass)
               if c.__module__ == module.__name__ and getattr(c, "name", None) == service.name)
    rpcs = {name for name, fn in inspect.getmembers(cls, inspect.isfunction)
            if any(isinstance(e, Rpc) for e in getattr(fn, "nameko_entrypoints", ()))}
    assert cls.access is DECLARED[service.name]
    assert set(cls.access.rpc) == rpcs
    for name in rpcs:
        assert getattr(getattr(cls, name), "access_checked", False), f"{name}: use shared.access.rpc"


def test_the_role_table_in_docs_is_the_declaration():
    assert access_table.OUT.read_text(encoding="utf-8") == access_table.render(), \
        "docs/security.md's role table is out of date: run `make docs`"


def test_a_method_missing_from_the_table_is_refused():
    from shared.auth import Principal
    from shared.errors import PermissionDenied
    with pytest.raises(PermissionDenied):
        access.permit(None, Principal("x", "admin", ("330100",)), "NewMethod")


def test_scope_rules():
    from shared.auth import Principal
    from shared.errors import PermissionDenied
    rule = access.allow("t", admin=access.OWN_DISTRICT, officer=access.OWN_RECORD, dispatcher=access.CITYWIDE)
    district_admin = Principal("a", "admin", ("330102",))
    access.require(rule, district_admin, units_=["330102001001001"])
    access.require(rule, district_admin, units_=[])  # nothing outside
    for units_ in (["330103001001001"], ["330102001001001", "330103001001001"], None):
        with pytest.raises(PermissionDenied):
            access.require(rule, district_admin, units_=units_)
    access.require(rule, district_admin, units_=["330102001001001", "330103001001001"], any_unit=True)
    with pytest.raises(PermissionDenied):
        access.require(rule, district_admin, units_=[], any_unit=True)
    access.require(rule, Principal("a", "admin", ("330100",)), units_=None)
    access.require(rule, Principal("me", "officer", ()), owner="me")
    with pytest.raises(PermissionDenied):
        access.require(rule, Principal("me", "officer", ()), owner="you")
    access.require(rule, Principal("d", "dispatcher", ("330100",)))
    with pytest.raises(PermissionDenied):
        access.require(rule, Principal("d", "dispatcher", ("330102",)))
    with pytest.raises(PermissionDenied):
        access.require(rule, Principal("s", "department", ("330100",)))


HTTP = [s for s in registry.SERVICES if s.http and s.name in DECLARED]


def _http_app(service):
    module = importlib.import_module(service.http)
    if service.name == "console":
        from services.console.app import create_app
        return create_app()
    return module.app()


@pytest.mark.parametrize("service", HTTP, ids=[s.name for s in HTTP])
def test_every_http_route_has_exactly_one_row(service):
    from starlette.routing import Route
    routes = {f"{method} {r.path}" for r in _http_app(service).routes if isinstance(r, Route) and r.include_in_schema
              for method in (r.methods or set()) - {"HEAD"}}
    assert set(DECLARED[service.name].http) == routes


def test_every_service_declares_its_entry_points():
    assert {s.name for s in registry.SERVICES if s.grpc or s.nameko or s.http} == set(DECLARED)
