"""Events against their contract: an event's type must be catalogued in an events.proto
(`// @event <type> <Message>: ...`), and its `data` must parse as that message, field by field
(a field the proto does not have, or a value of the wrong type, fails). Any test that has
events in hand, from the broker or from a service's outbox, checks them with this."""
from __future__ import annotations

import importlib

from google.protobuf import json_format

from scripts.event_catalogue import event_payloads


def payload_class(event_type: str):
    """The generated message class of an event type's payload."""
    proto, message = event_payloads()[event_type]
    module = importlib.import_module(proto.removesuffix(".proto").replace("/", ".") + "_pb2")
    return getattr(module, message)


def assert_payloads_match_protos(events) -> None:
    """Fails on the first event (CloudEvents envelope or outbox row as a dict with `type` and
    `data`) whose type is not catalogued or whose data does not parse as its payload message."""
    events = list(events)
    assert events, "no events to check"
    catalogued = event_payloads()
    for event in events:
        type_ = event["type"]
        assert type_ in catalogued, f"{type_} is in no events.proto's catalogue"
        cls = payload_class(type_)
        try:
            json_format.ParseDict(event["data"], cls(), ignore_unknown_fields=False)
        except json_format.ParseError as exc:
            raise AssertionError(f"{type_}: data does not match {cls.DESCRIPTOR.full_name}: {exc}") from None
