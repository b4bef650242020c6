"""Bad input never reaches INTERNAL: hypothesis builds requests for every method of every gRPC
service from its protobuf descriptor (any field of any type, with the values that broke servers
before mixed in: non-ASCII digits, non-UUID ids, negative and extreme numbers, NaN, deeply nested
JSON, blanks, NUL), sends them with a few callers' tokens, and every answer must be OK or a typed
client error."""
from __future__ import annotations

import importlib
import os
import uuid

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services import registry
from tests.authz.matrix import CITY, DISTRICT_A, DISTRICT_B, GRID_A
from tests.support import token

# Typed client errors and OK; a server stream that is still open when the client stops waiting
# ends DEADLINE_EXCEEDED (the client's own deadline).
TYPED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
         grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED,
         grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
         grpc.StatusCode.OUT_OF_RANGE}
STREAM_ENDS = {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))  # per method: ~70 methods stay within a minute

DEEP = "[" * 5000 + "]" * 5000
STRINGS = ["", " ", "\t\n", "²", "١٢٣", "１２３", "-1", "0", "99999999999999999999", str(uuid.uuid4()), "not-a-uuid",
           "00000000-0000-0000-0000-000000000000", GRID_A, DISTRICT_A, DISTRICT_B, CITY, "330102001", "0101", "x" * 5000,
           "a\x00b", DEEP, '{"type": "FeatureCollection", "features": [' + DEEP + "]}", "{}", "null", "SELECT 1;--",
           "extension", "return", "red", "black", "person", "enterprise", "grid.#", "#", "2026-02-30", "CG-SANITATION"]
BYTES = [b"", b"\xff\xfe", DEEP.encode(), b'{"type": "FeatureCollection", "features": [' + DEEP.encode() + b"]}",
         b'{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "330102"}, '
         b'"geometry": {"type": "Polygon", "coordinates": [[[1e309, 0], [0, 0]]]}}]}', b"\x00" * 100]
INT_RANGES = {F.TYPE_INT32: (-2**31, 2**31 - 1), F.TYPE_SINT32: (-2**31, 2**31 - 1), F.TYPE_SFIXED32: (-2**31, 2**31 - 1),
              F.TYPE_INT64: (-2**63, 2**63 - 1), F.TYPE_SINT64: (-2**63, 2**63 - 1), F.TYPE_SFIXED64: (-2**63, 2**63 - 1),
              F.TYPE_UINT32: (0, 2**32 - 1), F.TYPE_FIXED32: (0, 2**32 - 1),
              F.TYPE_UINT64: (0, 2**64 - 1), F.TYPE_FIXED64: (0, 2**64 - 1)}
# Methods whose success would change what other tests rely on get callers that may not succeed.
DESTRUCTIVE = {"DeactivateRule", "Unsubscribe", "Replay", "DeactivateDevice", "RegisterDevice", "Subscribe",
               "ImportUnits", "UpsertDepartment", "CreateRule", "AddRecord", "AddExternalRecord", "ImportRecords",
               "DecideRepair", "RegisterSubject"}


def _scalar(field) -> st.SearchStrategy:
    t = field.type
    if t == F.TYPE_STRING:
        return st.one_of(st.sampled_from(STRINGS), st.text(max_size=30))
    if t == F.TYPE_BYTES:
        return st.one_of(st.sampled_from(BYTES), st.binary(max_size=64))
    if t == F.TYPE_BOOL:
        return st.booleans()
    if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.one_of(st.sampled_from([0.0, -1.0, 120.1, 30.1, 1e308, -1e308]), st.floats(width=32 if t == F.TYPE_FLOAT else 64))
    if t == F.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values] + [99, -1])
    lo, hi = INT_RANGES[t]
    return st.one_of(st.sampled_from([v for v in (0, 1, -1, 2, lo, hi, 10_000_000) if lo <= v <= hi]),
                     st.integers(lo, hi))


def _timestamp(cls) -> st.SearchStrategy:
    return st.builds(cls, seconds=st.one_of(st.sampled_from([0, -62135596800, 253402300799, 1_790_000_000]),
                                            st.integers(-62135596800, 253402300799)),
                     nanos=st.integers(0, 999_999_999))


def message(descriptor, depth: int = 0) -> st.SearchStrategy:
    """Requests of this message type: any subset of its fields set, each to any value of its type."""
    cls = _message_class(descriptor)
    if descriptor.full_name == "google.protobuf.Timestamp":
        return _timestamp(cls)
    fields = {}
    for field in descriptor.fields:
        if field.type == F.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
                fields[field.name] = st.dictionaries(_scalar(key), _scalar(value), max_size=3)
                continue
            if depth >= 3:
                continue
            one = message(field.message_type, depth + 1)
        else:
            one = _scalar(field)
        repeated = field.is_repeated
        fields[field.name] = st.lists(one, max_size=3) if repeated else one
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: cls(**values))


def _message_class(descriptor):
    from google.protobuf import message_factory
    return message_factory.GetMessageClass(descriptor)


def _methods():
    out = []
    for service in registry.SERVICES:
        if not service.grpc:
            continue
        module = importlib.import_module(service.grpc)
        for method in descriptor_pool.Default().FindServiceByName(module.SERVICE_NAME).methods:
            out.append((service.name, module.SERVICE_NAME, method))
    return out


METHODS = _methods()
CALLERS = {
    "service": token("service", member_id="fuzz-service"),
    "admin elsewhere": token("admin", "110100", member_id="fuzz-admin"),
    "officer": token("officer", GRID_A, member_id=str(uuid.uuid4())),
    "dispatcher": token("dispatcher", DISTRICT_A, member_id="fuzz-dispatcher"),
    "department": token("department", CITY, member_id="CG-SANITATION"),
    "no token": None,
}


@pytest.mark.parametrize("service,full_name,method", METHODS, ids=[f"{m[0]}.{m[2].name}" for m in METHODS])
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_every_answer_is_ok_or_a_typed_client_error(channels, service, full_name, method, data):
    # Mostly a caller who gets past the role check, so the request itself is what is tried.
    strongest = "admin elsewhere" if method.name in DESTRUCTIVE else "service"
    who = data.draw(st.one_of(st.just(strongest), st.sampled_from(list(CALLERS))), label="caller")
    strategy = message(method.input_type)
    bearer = CALLERS[who]
    md = [("authorization", f"Bearer {bearer}")] if bearer else []
    path = f"/{full_name}/{method.name}"
    channel = channels[service]
    request_cls = _message_class(method.input_type)
    response_cls = _message_class(method.output_type)
    kw = dict(request_serializer=request_cls.SerializeToString, response_deserializer=response_cls.FromString)
    if method.client_streaming:
        requests = data.draw(st.lists(strategy, max_size=3), label="requests")
        call = lambda: channel.stream_unary(path, **kw)(iter(requests), metadata=md, timeout=20)  # noqa: E731
    else:
        request = data.draw(strategy, label="request")
        if method.server_streaming:
            call = lambda: list(channel.unary_stream(path, **kw)(request, metadata=md, timeout=1.5))  # noqa: E731
        else:
            call = lambda: channel.unary_unary(path, **kw)(request, metadata=md, timeout=20)  # noqa: E731
    try:
        call()
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details()
    allowed = TYPED | (STREAM_ENDS if method.server_streaming else set())
    assert code in allowed, f"{service}.{method.name} as {who}: {code} {details}"

