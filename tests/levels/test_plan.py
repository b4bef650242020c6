"""Three levels, without a broker: what gridbus tells the broker, and the events' sources."""
import pytest

from shared import levels
from shared.config import settings
from shared.errors import InvalidArgument
from shared.outbox import event_source


def test_every_deployment_gets_a_levels_exchange_carrying_its_own_events():
    calls = levels.setup_plan("county-a")
    assert [c.path for c in calls] == ["/api/exchanges/county-a/gridbus.events", "/api/exchanges/county-a/gridbus.levels",
                                       "/api/bindings/county-a/e/gridbus.events/e/gridbus.levels"]
    assert calls[2].body == {"routing_key": "#"}


def test_a_parent_federates_its_levels_exchange_from_the_child_levels_exchange():
    calls = levels.link_plan("/", "130102", "amqps://fed:secret@county.example:5671/")
    upstream = next(c for c in calls if "federation-upstream" in c.path)
    assert upstream.path == "/api/parameters/federation-upstream/%2F/130102"   # the default vhost, quoted
    assert upstream.body["value"]["exchange"] == "gridbus.levels"
    # county -> city -> province crosses two links; the broker drops what crossed more than this
    assert upstream.body["value"]["max-hops"] >= 2
    assert upstream.body["value"]["ack-mode"] == "on-confirm"          # nothing lost on a dropped link
    policy = next(c for c in calls if "/api/policies/" in c.path)
    assert policy.body["pattern"] == r"^gridbus\.levels$" and policy.body["apply-to"] == "exchanges"
    # gridbus.events, which the parent's own services consume, is never federated
    assert not any("gridbus.events" in str(c.body.get("pattern", "")) for c in calls if c.body)


@pytest.mark.parametrize("name, uri, message", [
    ("County A", "amqp://h/", "DNS label"), ("-a", "amqp://h/", "DNS label"),
    ("a", "http://h/", "amqp:// or amqps://"), ("a", "amqp:///vhost", "with a host"),
])
def test_a_bad_child_is_refused_with_the_reason(name, uri, message):
    with pytest.raises(InvalidArgument, match=message):
        levels.link_plan("/", name, uri)


def test_printed_uris_hide_the_password():
    assert levels.redact_uri("amqps://fed:s3cret@h:5671/v") == "amqps://fed:***@h:5671/v"
    assert levels.redact_uri("amqp://h/v") == "amqp://h/v"


def test_the_vhost_comes_from_the_amqp_uri():
    assert levels.vhost_of("amqp://guest:guest@127.0.0.1:5672/") == "/"
    assert levels.vhost_of("amqp://guest:guest@127.0.0.1:5672/city") == "city"
    assert levels.vhost_of("amqp://guest:guest@127.0.0.1:5672/%2Fcity") == "/city"


def test_the_source_names_the_deployment_when_there_are_several(monkeypatch):
    monkeypatch.delenv("GRIDBUS_DEPLOYMENT", raising=False)
    assert event_source("incidents") == "/gridbus/incidents"
    monkeypatch.setenv("GRIDBUS_DEPLOYMENT", "130102")
    assert event_source("incidents") == "/gridbus/130102/incidents"


@pytest.mark.parametrize("bad", ["Shijiazhuang", "a_b", "-x", "x" * 64])
def test_a_deployment_name_is_a_dns_label(bad):
    with pytest.raises(RuntimeError, match="GRIDBUS_DEPLOYMENT"):
        settings({"GRIDBUS_DEPLOYMENT": bad})
