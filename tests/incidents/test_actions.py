"""The action table (ACTIONS in services/incidents/domain.py) and everything that must agree with
it: the gRPC enum, the event catalogue, the dispatch events incidents applies. No servers."""
from __future__ import annotations

from gridbus.incidents.v1 import incidents_pb2 as pb
from scripts.event_catalogue import event_payloads
from services.incidents import domain
from shared import auth


def test_every_action_has_its_grpc_enum_value_and_every_value_is_an_action():
    values = {v.name for v in pb.Action.DESCRIPTOR.values} - {"ACTION_UNSPECIFIED"}
    rows = {f"ACTION_{name.upper()}" for name in domain.ACTIONS}
    assert values == rows, (f"incidents.proto's Action lacks {sorted(rows - values)}; "
                            f"no row of ACTIONS has {sorted(values - rows)}")


def test_the_fields_some_actions_take_are_in_the_transition_request():
    fields = {f.name for f in pb.TransitionRequest.DESCRIPTOR.fields}
    assert set(domain.EXTRA_FIELDS) <= fields and {"note", "department_code"} <= fields


def test_the_events_actions_emit_are_exactly_the_catalogued_incident_events():
    catalogued = {t: message for t, (_, message) in event_payloads().items() if t.startswith("incidents.")}
    emitted = set(domain.EVENT_TYPES)
    assert set(catalogued) == emitted, (f"events.proto has no @event line for {sorted(emitted - set(catalogued))}; "
                                        f"no action emits {sorted(set(catalogued) - emitted)}")
    assert len(set(domain.EVENT_TYPES)) == len(domain.EVENT_TYPES)  # one event, one action
    assert set(catalogued.values()) == {"IncidentEventData"}


def test_the_dispatch_decisions_incidents_applies_are_catalogued_dispatch_events():
    catalogued = set(event_payloads())
    applied = [e for a in domain.ACTIONS.values() for e in a.from_dispatch]
    assert applied and all(e.startswith("dispatch.task.") and e in catalogued for e in applied)
    assert len(applied) == len(set(applied))  # a decision makes one action
    assert domain.action_for_dispatch_event("dispatch.task.acknowledged").name == "accept"
    assert domain.action_for_dispatch_event("dispatch.task.escalated") is None


def test_every_row_names_known_statuses_roles_and_fields():
    for a in domain.ACTIONS.values():
        assert a.sources and a.sources <= set(domain.STATUSES), a.name
        assert a.target is None or a.target in domain.STATUSES, a.name
        assert a.roles and a.roles <= set(auth.ROLES), a.name
        assert a.department in (domain.KEEPS, domain.SETS, domain.CHANGES, domain.CLEARS), a.name
        assert a.takes is None or a.takes in domain.EXTRA_FIELDS, a.name


def test_a_department_decision_reaching_an_incident_another_department_has_is_a_reroute():
    dispatch = domain.ACTIONS["dispatch"]
    assert domain.reassignment(dispatch, domain.DISPATCHED, "CG-01", "SW-02").name == "reroute"
    assert domain.reassignment(dispatch, domain.IN_PROGRESS, "CG-01", "SW-02").name == "reroute"
    assert domain.reassignment(dispatch, domain.DISPATCHED, "CG-01", "CG-01") is None  # a repeat: late
    assert domain.reassignment(dispatch, domain.REPORTED, None, "CG-01") is None        # it applies as it is
    assert domain.reassignment(dispatch, domain.RESOLVED, "CG-01", "SW-02") is None     # moved past: late
    assert domain.reassignment(domain.ACTIONS["accept"], domain.DISPATCHED, "CG-01", "SW-02") is None
