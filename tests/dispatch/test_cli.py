"""`gridbus dispatch ...` as a dispatcher runs it, through the gRPC API with a token."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.dispatch.test_dispatch import D1_GRID, officer, task_for
from tests.incidents.conftest import report_request
from tests.support import token

GRIDBUS = str(Path(sys.executable).parent / "gridbus")


def gridbus(environment, port, who, *args, check=True):
    return subprocess.run([GRIDBUS, "dispatch", "--server", f"127.0.0.1:{port}", "--token", who, *args],
                          env=environment, capture_output=True, text=True, timeout=60, check=check)


def test_queue_and_reroute_from_the_command_line(environment, stub, dispatch_server, dispatch_stub,
                                                 dispatch_nameko):
    incident = stub.Report(report_request(D1_GRID, category="0505", title="Van on the crossing"),
                           metadata=officer(D1_GRID)).incident
    task = task_for(dispatch_stub, incident.id)
    dispatcher = token("dispatcher", D1_GRID[:6], member_id="dispatcher-cli")

    queue = gridbus(environment, dispatch_server, dispatcher, "queue", "--unit", D1_GRID[:6], "--limit", "500").stdout
    line = next(row for row in queue.splitlines() if row.startswith(task.id))
    assert "JJ-TRAFFIC" in line and D1_GRID in line

    rerouted = gridbus(environment, dispatch_server, dispatcher, "reroute", task.id, "--version", str(task.version),
                       "--department", "CG-STREET", "--reason", "a broken-down van: the street office tows").stdout
    assert rerouted.startswith(task.id) and "CG-STREET" in rerouted and f"v{task.version + 1}" in rerouted

    stale = gridbus(environment, dispatch_server, dispatcher, "reroute", task.id, "--version", str(task.version),
                    "--department", "JJ-TRAFFIC", "--reason", "back again", check=False)
    assert stale.returncode != 0 and "ABORTED" in stale.stderr

    other_district = token("dispatcher", "330103", member_id="dispatcher-elsewhere")
    refused = gridbus(environment, dispatch_server, other_district, "reject", task.id, "--version",
                      str(task.version + 1), "--reason", "not ours", check=False)
    assert refused.returncode != 0 and "PERMISSION_DENIED" in refused.stderr

    unsigned = gridbus(environment, dispatch_server, "", "queue", check=False)
    assert unsigned.returncode != 0 and "give --token" in unsigned.stderr


def test_a_department_asks_for_an_extension_and_a_dispatcher_approves_from_the_command_line(
        environment, stub, dispatch_server, dispatch_stub, dispatch_nameko):
    from gridbus.dispatch.v1 import dispatch_pb2 as pb
    incident = stub.Report(report_request(D1_GRID, category="0102"), metadata=officer(D1_GRID)).incident
    task = task_for(dispatch_stub, incident.id)
    department = token("department", "330100", member_id="CG-SANITATION")
    dispatcher = token("dispatcher", D1_GRID[:6], member_id="dispatcher-cli")
    asked = gridbus(environment, dispatch_server, department, "request", task.id, "extension", "--version",
                    str(task.version), "--minutes", "90", "--reason", "the sweeper is in repair").stdout
    assert asked.startswith(task.id) and "extension requested" in asked and "clock paused" in asked
    self_approved = gridbus(environment, dispatch_server, department, "approve", task.id, "extension", "--version",
                            str(task.version + 2), "--reason", "fine", check=False)
    assert self_approved.returncode != 0 and "PERMISSION_DENIED" in self_approved.stderr
    approved = gridbus(environment, dispatch_server, dispatcher, "approve", task.id, "extension", "--version",
                       str(task.version + 2), "--granted-minutes", "60", "--reason", "an hour").stdout
    assert "clock paused" not in approved and "requested" not in approved
    t = dispatch_stub.GetTask(pb.GetTaskRequest(task_id=task.id), metadata=[("authorization", f"Bearer {dispatcher}")])
    assert (t.extended_minutes, t.pending) == (60, "")
