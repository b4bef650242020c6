"""Every entry point x every role x in and out of scope, from the access tables themselves
(tests/authz/matrix.py says what each cell sends and expects)."""
from __future__ import annotations

import grpc
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from services.dispatch.access import TABLE as DISPATCH
from services.grid.access import TABLE as GRID
from tests.authz import samples
from tests.authz.matrix import call_for, every_cell

TABLES = {"grid": GRID, "dispatch": DISPATCH}
GRPC_SAMPLES = {"grid": samples.GRID_GRPC, "dispatch": samples.DISPATCH_GRPC}
RPC_SAMPLES = {"grid": samples.GRID_RPC, "dispatch": samples.DISPATCH_RPC}
# Answers that say nothing about permission, or that something else is broken.
NEVER_WHEN_ALLOWED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
                      grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNIMPLEMENTED}


def test_every_entry_point_has_a_sample():
    for name, table in TABLES.items():
        assert set(GRPC_SAMPLES[name]) == {e for e, rule in table.grpc.items() if not rule.public}, name
        assert set(RPC_SAMPLES[name]) == {e for e, rule in table.rpc.items() if not rule.public}, name


GRPC_CELLS = every_cell(list(TABLES.values()), "grpc")
RPC_CELLS = every_cell(list(TABLES.values()), "rpc")


@pytest.mark.parametrize("cell", GRPC_CELLS, ids=[c.id for c in GRPC_CELLS])
def test_grpc(cell, grpc_stubs, world):
    table, sample = TABLES[cell.service], GRPC_SAMPLES[cell.service][cell.entry]
    call = call_for(table, cell, sample, world)
    method = getattr(grpc_stubs[cell.service], cell.entry)
    try:
        method(sample.request(world), metadata=[("authorization", f"Bearer {call.bearer}")], timeout=30)
        code = grpc.StatusCode.OK
    except grpc.RpcError as exc:
        code = exc.code()
        detail = exc.details()
    if call.denied:
        assert code == grpc.StatusCode.PERMISSION_DENIED, f"{cell.id}: {code}"
    else:
        assert code not in NEVER_WHEN_ALLOWED, f"{cell.id}: {code} {detail}"


@pytest.mark.parametrize("cell", RPC_CELLS, ids=[c.id for c in RPC_CELLS])
def test_nameko_rpc(cell, nameko_config, world):
    table, sample = TABLES[cell.service], RPC_SAMPLES[cell.service][cell.entry]
    call = call_for(table, cell, sample, world)
    kwargs = sample.request(world)
    with ClusterRpcProxy(nameko_config, timeout=30, context_data={"authorization": f"Bearer {call.bearer}"}) as rpc:
        try:
            getattr(getattr(rpc, cell.service), cell.entry)(**kwargs)
            error = None
        except RemoteError as exc:
            error = exc.exc_type
    if call.denied:
        assert error == "PermissionDenied", f"{cell.id}: {error}"
    else:
        assert error not in {"PermissionDenied", "Unauthenticated"} and (error is None or error in DOMAIN_ERRORS), \
            f"{cell.id}: {error}"


DOMAIN_ERRORS = {"InvalidArgument", "NotFound", "AlreadyExists", "FailedPrecondition", "Aborted", "ResourceExhausted"}
