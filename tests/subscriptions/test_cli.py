"""`gridbus subscriptions ...` as an operator runs it, on the database and the broker."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from gridbus.subscriptions.v1 import subscriptions_pb2 as pb
from tests.incidents.conftest import DISTRICTS
from tests.support import metadata

GRIDBUS = str(Path(sys.executable).parent / "gridbus")
DISTRICT = DISTRICTS[1]


def gridbus(environment, *args, check=True):
    return subprocess.run([GRIDBUS, "subscriptions", *args], env=environment, capture_output=True, text=True,
                          timeout=60, check=check)


def test_an_operator_registers_an_organisation_and_mints_its_token(environment, subs):
    out = gridbus(environment, "org", "police-b", "--name", "District B police", "--scope", DISTRICT,
                  "--grant", "positions", "notes").stdout
    assert "police-b" in out and DISTRICT in out and "notes positions" in out
    assert "police-b" in gridbus(environment, "orgs").stdout
    tok = gridbus(environment, "token", "police-b", "--ttl", "600").stdout.strip()
    sub = subs.Subscribe(pb.SubscribeRequest(name="patrols", patterns=["grid.member.*"], grants=["positions"]),
                         metadata=metadata(tok))
    assert (sub.organisation, list(sub.scope), list(sub.grants)) == ("police-b", [DISTRICT], ["positions"])
    listed = gridbus(environment, "list", "--org", "police-b").stdout
    assert "patrols" in listed and "gridbus.sub.police-b.patrols" in listed
    added = gridbus(environment, "add", "police-b", "archive", "incidents.#", "--grant", "notes").stdout
    assert "police-b/archive" in added
    refused = gridbus(environment, "add", "police-b", "archive", "#", "--grant", "phones", check=False)
    assert refused.returncode != 0 and "not granted" in refused.stderr
    replayed = gridbus(environment, "replay", "police-b", "archive", "--since", "2026-01-01T00:00:00+08:00").stdout
    assert "replayed" in replayed
    gridbus(environment, "remove", "police-b", "archive")
    # Deactivated: its token is refused at once.
    off = gridbus(environment, "org", "police-b", "--deactivate").stdout
    assert "deactivated" in off and DISTRICT in off and "notes positions" in off  # the rest kept
    listed = [line for line in gridbus(environment, "orgs").stdout.splitlines() if line.startswith("police-b ")]
    assert len(listed) == 1 and "off" in listed[0] and "District B police" in listed[0]
    with pytest.raises(grpc.RpcError) as refused:
        subs.ListSubscriptions(pb.ListSubscriptionsRequest(), metadata=metadata(tok))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
