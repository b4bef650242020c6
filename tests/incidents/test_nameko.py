"""The incidents nameko service over RPC: the same operations and checks as gRPC."""
from __future__ import annotations

import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from tests.incidents.conftest import GRIDS, report_request
from tests.support import metadata, token

GRID = GRIDS[9]


def rpc(environment, role, *scope, member_id="rpc-caller"):
    return ClusterRpcProxy({"AMQP_URI": environment["GRIDBUS_AMQP_URI"]}, timeout=15,
                           context_data={"authorization": f"Bearer {token(role, *scope, member_id=member_id)}"})


def test_get_and_transition_over_rpc(environment, stub, incidents_nameko):
    incident = stub.Report(report_request(GRID), metadata=metadata(token("officer", GRID, member_id="o-rpc"))).incident
    with rpc(environment, "dispatcher", GRID[:6], member_id="d-rpc") as cluster:
        got = cluster.incidents.get_incident(incident.id)
        assert (got["status"], got["version"], got["grid_code"]) == ("reported", 1, GRID)
        assert [h["action"] for h in got["history"]] == ["report"]
        moved = cluster.incidents.transition(incident.id, "dispatch", 1, department_code="CG-01")
        assert (moved["status"], moved["version"]) == ("dispatched", 2)
        with pytest.raises(RemoteError) as stale:
            cluster.incidents.transition(incident.id, "reject", 1, note="late")
        assert stale.value.exc_type == "Aborted"
    with rpc(environment, "dispatcher", "330199") as foreign:
        with pytest.raises(RemoteError) as denied:
            foreign.incidents.get_incident(incident.id)
    assert denied.value.exc_type == "PermissionDenied"
    with ClusterRpcProxy({"AMQP_URI": environment["GRIDBUS_AMQP_URI"]}, timeout=15) as anonymous:
        with pytest.raises(RemoteError) as unauthenticated:
            anonymous.incidents.get_incident(incident.id)
        assert anonymous.incidents.health() == {"status": "SERVING"}
    assert unauthenticated.value.exc_type == "Unauthenticated"


def test_side_procedures_over_rpc(environment, stub, incidents_nameko):
    """A case's side procedure over nameko: asked by one role, decided by another."""
    incident = stub.Report(report_request(GRID), metadata=metadata(token("officer", GRID, member_id="o-rpc"))).incident
    with rpc(environment, "officer", GRID, member_id="o-rpc") as officer:
        asked = officer.incidents.transition(incident.id, "request_void", 1, note="reported twice by mistake")
        assert (asked["status"], asked["pending"]) == ("reported", "void")
        with pytest.raises(RemoteError) as denied:
            officer.incidents.transition(incident.id, "approve_void", asked["version"], note="mine")
        assert denied.value.exc_type == "PermissionDenied"
    with rpc(environment, "admin", "330100", member_id="centre-head") as lead:
        voided = lead.incidents.transition(incident.id, "approve_void", asked["version"], note="a duplicate")
        assert (voided["status"], voided["pending"]) == ("voided", None)
    with rpc(environment, "dispatcher", GRID[:6], member_id="d-rpc") as dispatcher:
        with pytest.raises(RemoteError) as late:
            dispatcher.incidents.transition(incident.id, "request_park", voided["version"], note="x",
                                            review_at="2099-01-01T00:00:00Z")
        assert late.value.exc_type == "FailedPrecondition"  # a voided case is over
