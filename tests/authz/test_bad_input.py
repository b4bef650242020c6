"""The malformed inputs that used to reach INTERNAL, each now a typed client error; and the
database's refusal of a value no validator named is INVALID_ARGUMENT, never INTERNAL. (Open311's
blank description: tests/open311/test_http.py.)"""
from __future__ import annotations

import json
import uuid

import grpc
import pytest

from gridbus.credit.v1 import credit_pb2 as cpb
from gridbus.credit.v1 import credit_pb2_grpc
from gridbus.dispatch.v1 import dispatch_pb2 as dpb
from gridbus.dispatch.v1 import dispatch_pb2_grpc
from gridbus.grid.v1 import grid_pb2 as gpb
from gridbus.grid.v1 import grid_pb2_grpc
from gridbus.incidents.v1 import incidents_pb2 as ipb
from gridbus.incidents.v1 import incidents_pb2_grpc
from gridbus.sensors.v1 import sensors_pb2 as spb
from gridbus.sensors.v1 import sensors_pb2_grpc
from tests.authz.matrix import GRID_A
from tests.support import metadata, token

SERVICE = metadata(token("service", member_id="bad-input"))
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def code_of(call, request, who=SERVICE) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        result = call(request, metadata=who, timeout=20)
        if hasattr(result, "__iter__") and not hasattr(result, "DESCRIPTOR"):
            list(result)
    return info.value.code()


@pytest.fixture(scope="module")
def stubs(channels):
    return {"grid": grid_pb2_grpc.GridServiceStub(channels["grid"]),
            "incidents": incidents_pb2_grpc.IncidentServiceStub(channels["incidents"]),
            "dispatch": dispatch_pb2_grpc.DispatchServiceStub(channels["dispatch"]),
            "credit": credit_pb2_grpc.CreditServiceStub(channels["credit"]),
            "sensors": sensors_pb2_grpc.SensorServiceStub(channels["sensors"])}


def test_a_page_token_of_non_ascii_digits(stubs):
    subject = str(uuid.uuid4())
    for page_token in ("²", "١٢٣", "１２"):
        req = cpb.ListRecordsRequest(subject_id=subject, page_token=page_token, purpose="p")
        assert code_of(stubs["credit"].ListRecords, req) == INVALID, page_token
    for number in ("11010519491231002²", "１１０１０５１９４９１２３１００２X"):
        assert code_of(stubs["credit"].GetSubject, cpb.GetSubjectRequest(id_number=number, purpose="p")) == INVALID


def test_ids_that_are_no_uuid(stubs):
    assert code_of(stubs["dispatch"].GetTask, dpb.GetTaskRequest(incident_id="not-a-uuid")) == INVALID
    assert code_of(stubs["dispatch"].Merge, dpb.MergeRequest(task_id=str(uuid.uuid4()), into_incident_id="x",
                                                             expected_version=1)) == INVALID
    assert code_of(stubs["sensors"].DeactivateDevice, spb.DeactivateDeviceRequest(id="a\x00b")) == \
        grpc.StatusCode.NOT_FOUND


def test_negative_limits(stubs):
    assert code_of(stubs["credit"].ListUnmatched, cpb.ListUnmatchedRequest(limit=-1)) == INVALID
    assert code_of(stubs["dispatch"].ListQueue, dpb.ListQueueRequest(limit=-5)) == INVALID
    assert code_of(stubs["grid"].ListMembers, gpb.ListMembersRequest(grid_code=GRID_A, page_size=-1)) == INVALID


def test_deeply_nested_json_in_import_units(stubs):
    deep = "[" * 100_000 + "]" * 100_000
    for body in (deep, json.dumps({"type": "FeatureCollection", "features": []})[:-2] + deep + "]}"):
        req = gpb.ImportUnitsRequest(feature_collection_geojson=body.encode())
        assert code_of(stubs["grid"].ImportUnits, req) == INVALID


def test_a_unit_code_with_a_nul_character(stubs):
    req = ipb.ListIncidentsRequest(grid_code="330102\x00")
    assert code_of(stubs["incidents"].ListIncidents, req) == INVALID
    assert code_of(stubs["incidents"].Watch, ipb.WatchRequest(grid_code="a\x00b")) == INVALID

