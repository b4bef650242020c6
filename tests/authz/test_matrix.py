"""Every entry point x every role x in and out of scope, from the access tables themselves
(tests/authz/matrix.py says what each cell sends and expects)."""
from __future__ import annotations

import importlib

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from scripts.access_table import tables
from services import registry
from tests.authz import samples
from tests.authz.matrix import call_for, every_cell, rule_of

TABLES = {t.service: t for t in tables()}
GRPC_SAMPLES = samples.GRPC
RPC_SAMPLES = samples.RPC
# Answers that say nothing about permission, or that something else is broken. A server stream
# that is still open when the cell stops waiting ends DEADLINE_EXCEEDED: allowed.
NEVER_WHEN_ALLOWED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
                      grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNIMPLEMENTED}
DOMAIN_ERRORS = {"InvalidArgument", "NotFound", "AlreadyExists", "FailedPrecondition", "Aborted", "ResourceExhausted"}


def test_every_entry_point_has_a_sample():
    for name, table in TABLES.items():
        if name not in GRPC_SAMPLES:
            continue
        assert set(GRPC_SAMPLES.get(name, {})) == {e for e, rule in table.grpc.items() if not rule.public}, name
        assert set(RPC_SAMPLES.get(name, {})) == {e for e, rule in table.rpc.items() if not rule.public}, name


GRPC_CELLS = every_cell([t for t in TABLES.values() if t.service in GRPC_SAMPLES], "grpc", GRPC_SAMPLES)
RPC_CELLS = every_cell([t for t in TABLES.values() if t.service in RPC_SAMPLES], "rpc", RPC_SAMPLES)


def _method(service: str, name: str):
    module = importlib.import_module(registry.BY_NAME[service].grpc)
    return descriptor_pool.Default().FindServiceByName(module.SERVICE_NAME).methods_by_name[name], module.SERVICE_NAME


@pytest.mark.parametrize("cell", GRPC_CELLS, ids=[c.id for c in GRPC_CELLS])
def test_grpc(cell, channels, world):
    table, sample = TABLES[cell.service], GRPC_SAMPLES[cell.service][cell.entry]
    call = call_for(table, cell, sample, world)
    request = sample.request_for(cell.role, cell.case, rule_of(table, cell).roles.get(cell.role), world)
    method, full_name = _method(cell.service, cell.entry)
    kw = dict(request_serializer=GetMessageClass(method.input_type).SerializeToString,
              response_deserializer=GetMessageClass(method.output_type).FromString)
    path, channel, md = f"/{full_name}/{cell.entry}", channels[cell.service], [("authorization", f"Bearer {call.bearer}")]
    detail = ""
    try:
        if method.client_streaming:
            channel.stream_unary(path, **kw)(iter([request]), metadata=md, timeout=30)
        elif method.server_streaming:
            list(channel.unary_stream(path, **kw)(request, metadata=md, timeout=1.5))
        else:
            channel.unary_unary(path, **kw)(request, metadata=md, timeout=30)
        code = grpc.StatusCode.OK
    except grpc.RpcError as exc:
        code, detail = exc.code(), exc.details()
    if call.denied:
        assert code == grpc.StatusCode.PERMISSION_DENIED, f"{cell.id}: {code} {detail}"
    else:
        assert code not in NEVER_WHEN_ALLOWED, f"{cell.id}: {code} {detail}"


@pytest.mark.parametrize("cell", RPC_CELLS, ids=[c.id for c in RPC_CELLS])
def test_nameko_rpc(cell, nameko_config, world):
    table, sample = TABLES[cell.service], RPC_SAMPLES[cell.service][cell.entry]
    call = call_for(table, cell, sample, world)
    kwargs = sample.request_for(cell.role, cell.case, rule_of(table, cell).roles.get(cell.role), world)
    with ClusterRpcProxy(nameko_config, timeout=30, context_data={"authorization": f"Bearer {call.bearer}"}) as rpc:
        try:
            getattr(getattr(rpc, cell.service), cell.entry)(**kwargs)
            error = None
        except RemoteError as exc:
            error = exc.exc_type
    if call.denied:
        assert error == "PermissionDenied", f"{cell.id}: {error}"
    else:
        assert error is None or error in DOMAIN_ERRORS, f"{cell.id}: {error}"
