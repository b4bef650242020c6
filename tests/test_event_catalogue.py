"""Generated docs must match their sources: docs/events.md the protos, the actions section of
docs/service-contracts.md the incidents action table."""
from scripts import action_table
from scripts.event_catalogue import OUT, render


def test_the_committed_event_catalogue_is_current():
    assert OUT.read_text(encoding="utf-8") == render(), "docs/events.md is out of date: run `make docs`"


def test_every_incidents_event_type_is_catalogued():
    from services.incidents.domain import EVENT_TYPES
    text = render()
    for event_type in EVENT_TYPES:
        assert f"`{event_type}`" in text


def test_the_committed_actions_section_of_the_service_contracts_is_current():
    assert action_table.OUT.read_text(encoding="utf-8") == action_table.render(), \
        "docs/service-contracts.md is out of date: run `make docs`"
