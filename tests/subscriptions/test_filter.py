"""The subscriber's filter (pure) and the declaration of personal fields held against the protos."""
from __future__ import annotations

import re

import pytest
from google.protobuf import descriptor_pool

from scripts.event_catalogue import event_payloads
from services.subscriptions import domain, filtering
from services.subscriptions.filtering import Share, deliverable
from shared import privacy
from shared.errors import InvalidArgument

CITY, DISTRICT, OTHER = "330100", "330106", "330108"
GRID = "330106001002003"
ELSEWHERE = "330108001001001"
EVERYTHING = frozenset(privacy.GRANTS)
# Field names that suggest a person: each such field is declared personal or reviewed as not.
PERSONAL_SOUNDING = re.compile(r"^name$|phone|^lon$|^lat$|location|position|as_sent|note|reason|resolution|"
                               r"reporter|^by$|_by$|member_id|subject|actor|recipient|title|message|identity")


def _message(full_name: str):
    import gridbus.credit.v1.events_pb2  # noqa: F401 - registers the payloads in the default pool
    import gridbus.dispatch.v1.events_pb2  # noqa: F401
    import gridbus.emergencies.v1.events_pb2  # noqa: F401
    import gridbus.grid.v1.events_pb2  # noqa: F401
    import gridbus.incidents.v1.events_pb2  # noqa: F401
    import gridbus.sensors.v1.events_pb2  # noqa: F401
    return descriptor_pool.Default().FindMessageTypeByName(full_name)


def _field(message, path: list[str]):
    field = message.fields_by_name.get(path[0])
    assert field is not None, f"{message.full_name} has no field {path[0]}"
    return field if len(path) == 1 else _field(field.message_type, path[1:])


CATALOGUE = event_payloads()


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_every_event_type_has_its_payload_and_personal_fields_declared(event_type):
    declared = filtering.payload_of(event_type)
    assert declared is not None, f"{event_type}: add it to services/subscriptions/filtering.py PAYLOADS"
    message_name, unit_fields = declared
    proto_file, payload = CATALOGUE[event_type]
    message = _message(message_name)
    assert message.name == payload and message.file.name == proto_file
    assert privacy.personal_fields(message_name) is not None, f"{message_name}: declare it in shared/privacy.py"
    for path in [*privacy.personal_fields(message_name), *unit_fields]:
        _field(message, path.split("."))


@pytest.mark.parametrize("message_name", sorted(privacy.PERSONAL_FIELDS))
def test_every_personal_sounding_field_is_declared_personal_or_reviewed(message_name):
    personal = privacy.PERSONAL_FIELDS[message_name]
    assert set(personal.values()) <= set(privacy.GRANTS)

    def walk(message, prefix: str) -> None:
        for field in message.fields:
            path = prefix + field.name
            if PERSONAL_SOUNDING.search(field.name):
                assert path in personal or f"{message_name}.{path}" in privacy.NOT_PERSONAL, \
                    f"{message_name}.{path}: declare it in shared/privacy.py PERSONAL_FIELDS or NOT_PERSONAL"
            reviewed = f"{message_name}.{path}" in privacy.NOT_PERSONAL
            if field.message_type is not None and path not in personal and not reviewed:
                walk(field.message_type, path + ".")
    walk(_message(message_name), "")


def test_the_reviewed_fields_exist():
    for key in privacy.NOT_PERSONAL:
        message, _, path = key.rpartition(".")
        _field(_message(message), path.split("."))


def incident(lineage, **data) -> dict:
    return {"specversion": "1.0", "id": "e1", "source": "/gridbus/incidents", "type": "incidents.incident.reported",
            "subject": "incidents/1", "time": "2026-11-25T00:00:00Z", "sequence": "1",
            "data": {"incident_id": "1", "lineage": lineage, "grid_code": lineage[-1], "reporter_id": "officer-7",
                     "note": "the owner shouted", "actor": {"id": "officer-7", "role": "officer"},
                     "subject": {"type": "person", "ref": "S1"}, "location": {"lon": 120.1, "lat": 30.2},
                     **data}}


def test_a_district_receives_its_own_units_events_and_not_anothers():
    mine = Share(frozenset({DISTRICT}), EVERYTHING)
    assert deliverable(incident([CITY, DISTRICT, GRID[:9], GRID[:12], GRID]), mine) is not None
    assert deliverable(incident([CITY, OTHER, ELSEWHERE[:9], ELSEWHERE[:12], ELSEWHERE]), mine) is None
    street = Share(frozenset({GRID[:9]}), EVERYTHING)
    assert deliverable(incident([CITY, DISTRICT, GRID[:9], GRID[:12], GRID]), street) is not None
    assert deliverable(incident([CITY, DISTRICT, "330106002", "330106002001", "330106002001001"]), street) is None


def test_events_about_no_unit_go_to_citywide_subscribers_only():
    imported = {"type": "grid.units.imported", "id": "u", "source": "/gridbus/grid",
                "data": {"created": 1, "updated": 0, "unchanged": 0, "changed_codes": [GRID], "by": "cli:ops"}}
    assert deliverable(imported, Share(frozenset({DISTRICT}), EVERYTHING)) is None
    got = deliverable(imported, Share(frozenset({CITY}), frozenset()))
    assert got is not None and "by" not in got["data"] and got["data"]["created"] == 1
    unplaced = {"type": "grid.member.position_reported", "id": "p", "source": "/gridbus/grid",
                "data": {"member_id": "m", "lon": 1.0, "lat": 2.0, "grid_code": None}}
    assert deliverable(unplaced, Share(frozenset({DISTRICT}), EVERYTHING)) is None


def test_a_member_is_about_each_grid_it_is_assigned_to():
    member = {"type": "grid.member.updated", "id": "m", "source": "/gridbus/grid",
              "data": {"member_id": "m", "name": "Li Lei", "phone": "139****1111",
                       "assignments": [{"grid_code": ELSEWHERE, "primary": True}, {"grid_code": GRID}]}}
    assert deliverable(member, Share(frozenset({DISTRICT}), frozenset())) is not None
    assert deliverable(member, Share(frozenset({"330102"}), frozenset())) is None


def test_ungranted_personal_fields_are_removed_not_blanked():
    event = incident([CITY, DISTRICT, GRID])
    got = deliverable(event, Share(frozenset({DISTRICT}), frozenset()))
    for gone in ("reporter_id", "note", "subject"):
        assert gone not in got["data"]
    assert got["data"]["actor"] == {"role": "officer"}
    assert got["data"]["location"] == {"lon": 120.1, "lat": 30.2} and got["data"]["incident_id"] == "1"
    assert event["data"]["reporter_id"] == "officer-7" and event["data"]["actor"]["id"] == "officer-7"  # a copy

    only_notes = deliverable(event, Share(frozenset({DISTRICT}), frozenset({privacy.NOTES})))
    assert only_notes["data"]["note"] == "the owner shouted" and "reporter_id" not in only_notes["data"]
    everything = deliverable(event, Share(frozenset({DISTRICT}), EVERYTHING))
    assert everything["data"] == event["data"]


def test_every_share_must_allow_it():
    """The subscription's and its organisation's: the narrower wins, for scope and for grants."""
    event = incident([CITY, DISTRICT, GRID])
    assert deliverable(event, Share(frozenset({CITY}), EVERYTHING), Share(frozenset({OTHER}), EVERYTHING)) is None
    got = deliverable(event, Share(frozenset({CITY}), EVERYTHING),
                      Share(frozenset({DISTRICT}), frozenset({privacy.REPORTERS})))
    assert got["data"]["reporter_id"] == "officer-7" and "note" not in got["data"]


def test_positions_inside_lists_are_removed_from_each_element():
    alert = {"type": "emergencies.alert.accepted", "id": "a", "source": "/gridbus/emergencies",
             "data": {"alert_id": "a", "lineage": [CITY, DISTRICT, GRID], "title": "fire",
                      "recipients": [{"member_id": "m1", "distance_m": 12.0}], "member_id": "m1"}}
    got = deliverable(alert, Share(frozenset({DISTRICT}), frozenset({privacy.IDENTITY})))
    assert got["data"]["member_id"] == "m1" and "recipients" not in got["data"] and "title" not in got["data"]
    position = {"type": "grid.member.position_reported", "id": "p", "source": "/gridbus/grid",
                "data": {"member_id": "m", "lon": 1.0, "lat": 2.0, "grid_code": GRID,
                         "as_sent": {"lon": 1.0, "lat": 2.0, "datum": "wgs84"}}}
    got = deliverable(position, Share(frozenset({DISTRICT}), frozenset()))
    assert got["data"] == {"member_id": "m", "grid_code": GRID}


def test_unknown_event_types_are_delivered_to_nobody():
    assert deliverable({"type": "payroll.run.done", "data": {"lineage": [CITY]}},
                       Share(frozenset({CITY}), EVERYTHING)) is None
    assert deliverable({"type": 7, "data": {}}, Share(frozenset({CITY}), EVERYTHING)) is None


def test_payloads_of_the_wrong_shape_are_about_no_unit():
    city, district = Share(frozenset({CITY}), frozenset()), Share(frozenset({DISTRICT}), frozenset())
    for data in (None, "text", [], {"lineage": "x"}, {"lineage": [1, None, "nonsense"]},
                 {"lineage": [{"code": DISTRICT}]}, {"actor": "officer-7", "note": None}):
        event = {"type": "incidents.incident.reported", "id": "x", "data": data}
        assert deliverable(event, district) is None, data
        assert deliverable(event, city) is not None, data
    got = deliverable({"type": "incidents.incident.reported", "data": {"actor": "officer-7", "note": "x"}}, city)
    assert got["data"] == {"actor": "officer-7"}


def test_scopes_and_grants_are_checked():
    assert filtering.check_scope([DISTRICT, DISTRICT, CITY]) == [CITY, DISTRICT]
    for bad in ([], ["33010"], ["abc"]):
        with pytest.raises(InvalidArgument):
            filtering.check_scope(bad)
    with pytest.raises(InvalidArgument, match="unknown grant"):
        filtering.check_grants(["phones", "salaries"])
    assert filtering.within([GRID, DISTRICT], [DISTRICT]) == []
    assert filtering.within([GRID, CITY, ELSEWHERE], [DISTRICT]) == [CITY, ELSEWHERE]


def test_queues_are_prefixed_by_their_organisation():
    assert domain.queue_name("env-bureau", "cases") == "gridbus.sub.env-bureau.cases"
    assert domain.check_organisation("env-bureau") == "env-bureau"
    for bad in ("a.b", "X", "", "-x"):
        with pytest.raises(InvalidArgument):
            domain.check_organisation(bad)
