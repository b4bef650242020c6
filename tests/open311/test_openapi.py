"""The OpenAPI description of Open311, run property-based (schemathesis) against the real
gateway: whatever it generates from the description, the answer is never a server error."""
from __future__ import annotations

import json
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.open311.conftest import API_KEY

# Each operation gets this many generated requests of each kind (valid by the description, and
# not): the whole run stays well under a minute.
EXAMPLES = 25
OPERATIONS = ["GET /open311/v2/discovery.{format}", "GET /open311/v2/services.{format}",
              "GET /open311/v2/services/{service_code}.{format}", "GET /open311/v2/requests.{format}",
              "POST /open311/v2/requests.{format}", "GET /open311/v2/requests/{service_request_id}.{format}"]


@pytest.fixture(scope="module")
def described(base) -> dict:
    with urllib.request.urlopen(base.split("/open311/")[0] + "/openapi.json", timeout=10) as reply:
        return json.loads(reply.read())


def test_the_description_names_every_route_in_both_formats(described):
    assert {f"{method.upper()} {path}" for path, methods in described["paths"].items() for method in methods} == \
        set(OPERATIONS)
    assert described["components"]["parameters"]["format"]["schema"]["enum"] == ["json", "xml"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_generated_request_gets_a_server_error(base, described, label, mode):
    schema = schemathesis.openapi.from_dict(described)
    operation = schema.find_operation_by_label(label)
    base_url = base.split("/open311/")[0]

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def no_server_error(case):
        if case.method == "POST" and isinstance(case.body, dict):
            case.body["api_key"] = API_KEY  # past the key check, into the report itself
        case.call_and_validate(base_url=base_url, checks=[not_a_server_error])

    no_server_error()
