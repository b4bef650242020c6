"""`gridbus incidents ...` as an operator runs it, through the gRPC API with a token."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.incidents.conftest import GRIDS, inside
from tests.support import token

GRID = GRIDS[10]
GRIDBUS = str(Path(sys.executable).parent / "gridbus")


def gridbus(environment, port, who, *args, check=True):
    return subprocess.run([GRIDBUS, "incidents", "--server", f"127.0.0.1:{port}", "--token", who, *args],
                          env=environment, capture_output=True, text=True, timeout=60, check=check)


def test_report_list_show_and_act_from_the_command_line(environment, incidents_server):
    officer = token("officer", GRID, member_id="officer-cli")
    dispatcher = token("dispatcher", GRID[:6], member_id="dispatcher-cli")
    lon, lat = inside(GRID)
    out = gridbus(environment, incidents_server, officer, "report", "--category", "0505", "--title", "Van on the crossing",
                  "--lon", str(lon), "--lat", str(lat)).stdout
    incident_id = out.split()[0]
    assert "reported" in out and GRID in out
    listed = gridbus(environment, incidents_server, dispatcher, "list", "--grid", GRID, "--status", "reported").stdout
    assert incident_id in listed
    acted = gridbus(environment, incidents_server, dispatcher, "act", incident_id, "dispatch", "--version", "1",
                    "--department", "JJ-TRAFFIC").stdout
    assert "dispatched" in acted and "JJ-TRAFFIC" in acted
    shown = gridbus(environment, incidents_server, dispatcher, "show", incident_id).stdout
    assert "report" in shown and "dispatch" in shown and "dispatcher:dispatcher-cli" in shown
    refused = gridbus(environment, incidents_server, officer, "act", incident_id, "close", "--version", "2", check=False)
    assert refused.returncode != 0 and "PERMISSION_DENIED" in refused.stderr
