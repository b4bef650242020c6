"""The console's routes x the apps' sessions, from its access table (services/console/access.py):
a route answers a session of a role its row names (whatever the answer: a random id is 404), and
refuses anyone else (401 or 403: no session of that app, or not that member's)."""
from __future__ import annotations

import re
import uuid

import httpx
import pytest

from services.console.access import TABLE
from services.console.officer import UPLOAD_PATH
from tests.console.conftest import officer_signed_in, signed_in

DISTRICT, GRID = "330102", "330102001001001"
PARAMS = {"z": "10", "x": "853", "y": "422", "incident_id": str(uuid.uuid4()), "action": "reject", "code": DISTRICT,
          "name": "access-test", "alert_id": str(uuid.uuid4())}
STREAMS = {"/api/events", "/api/officer/alerts/stream"}
ROUTES = [(key, rule) for key, rule in TABLE.http.items() if not rule.public]
SESSIONS = {"dispatcher": "console", "admin": "console", "officer": "officer", None: "no session"}


def _path(template: str) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: PARAMS[m.group(1)], template)


def _status(client: httpx.Client, method: str, path: str) -> int:
    if path in STREAMS:
        with client.stream(method, path, timeout=5) as answer:
            return answer.status_code
    if path == UPLOAD_PATH:  # a photo's body, not JSON (an empty one: 400)
        return client.request(method, path, content=b"", headers={"Content-Type": "image/jpeg"}).status_code
    return client.request(method, path, json={} if method in ("POST", "PUT") else None).status_code


@pytest.fixture(scope="module")
def clients(console_stack):
    base = console_stack["base"]
    with signed_in(base, DISTRICT, role="dispatcher", member_id="access-dispatcher") as dispatcher, \
            signed_in(base, DISTRICT, role="admin", member_id="access-admin") as admin, \
            officer_signed_in(base, GRID, f"officer-{GRID[-3:]}") as officer, \
            httpx.Client(base_url=base, timeout=20) as nobody:
        yield {"dispatcher": dispatcher, "admin": admin, "officer": officer, None: nobody}


@pytest.mark.parametrize("role", list(SESSIONS), ids=[str(r) for r in SESSIONS])
@pytest.mark.parametrize("route,rule", ROUTES, ids=[key for key, _ in ROUTES])
def test_a_route_answers_the_roles_its_row_names(clients, route, rule, role):
    method, template = route.split(" ", 1)
    status = _status(clients[role], method, _path(template))
    if role in rule.roles:
        assert status not in (401, 403, 500), f"{route} as {role}: {status}"
    else:
        assert status in (401, 403), f"{route} as {role}: {status}"
