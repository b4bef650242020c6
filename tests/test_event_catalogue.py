"""docs/events.md is generated from the protos; it must match them."""
from scripts.event_catalogue import OUT, render


def test_the_committed_event_catalogue_is_current():
    assert OUT.read_text(encoding="utf-8") == render(), "docs/events.md is out of date: run `make docs`"


def test_every_incidents_event_type_is_catalogued():
    from services.incidents.domain import EVENT_OF
    text = render()
    for suffix in ["reported", *EVENT_OF.values()]:
        assert f"`incidents.incident.{suffix}`" in text
