"""The event checker itself: it passes a payload its proto describes and catches one it does not."""
from __future__ import annotations

import pytest

from tests.event_contract import assert_payloads_match_protos, payload_class

GOOD = {"type": "dispatch.task.escalated",
        "data": {"task_id": "t", "incident_id": "i", "status": "assigned", "department_code": None, "rule_id": 3,
                 "lineage": ["330100"], "actor": {"id": "dispatch", "role": "service"}, "level": 1,
                 "missed_due_at": "2026-11-24T22:58:01Z"}}


def test_a_payload_as_its_proto_describes_it_passes():
    assert payload_class("incidents.incident.closed").DESCRIPTOR.name == "IncidentEventData"
    assert_payloads_match_protos([GOOD])


@pytest.mark.parametrize("event,complaint", [
    ({**GOOD, "data": {**GOOD["data"], "colour": "red"}}, "colour"),
    ({**GOOD, "data": {**GOOD["data"], "level": "one"}}, "level"),
    ({**GOOD, "data": {**GOOD["data"], "actor": "dispatch"}}, "actor"),
    ({**GOOD, "type": "dispatch.task.teleported"}, "no events.proto"),
])
def test_a_field_or_type_the_proto_does_not_have_fails(event, complaint):
    with pytest.raises(AssertionError, match=complaint):
        assert_payloads_match_protos([event])


def test_nothing_to_check_is_a_failure_not_a_pass():
    with pytest.raises(AssertionError, match="no events"):
        assert_payloads_match_protos([])
