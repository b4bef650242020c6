"""The broker users' declaration (shared/broker_users.py), as pure data: who owns which event
type (from the event catalogue), and what each user's regexes let through."""
from __future__ import annotations

import re

import pytest

from scripts.event_catalogue import event_payloads
from shared import broker_users as b


def test_every_catalogued_event_is_owned_by_the_service_whose_proto_lists_it():
    catalogue = event_payloads()  # type -> (protos/gridbus/<service>/v1/events.proto, message)
    assert catalogue
    for type_, (proto, _) in catalogue.items():
        assert b.owner(type_) == proto.split("/")[1], type_
    assert {proto.split("/")[1] for proto, _ in catalogue.values()} == b.event_owners()
    assert b.owner("subscriptions.anything.done") is None and b.owner("") is None


def test_consumers_accept_only_the_owners_user():
    event = {"type": "incidents.incident.closed"}
    assert b.from_owner(event, "gridbus-incidents", "gridbus-")
    for user in ("gridbus-dispatch", "guest", None, "incidents"):
        assert not b.from_owner(event, user, "gridbus-")
    assert not b.from_owner({"type": "nobody.thing.happened"}, "gridbus-nobody", "gridbus-")


def _topic(grant: b.Grant, exchange: str) -> tuple[str, str]:
    return next((w, r) for x, w, r in grant.topics if x == exchange)


@pytest.mark.parametrize("service", sorted(b.event_owners()))
def test_a_publisher_may_publish_its_own_events_and_no_others(service):
    write, _ = _topic(b.grant(service, "gridbus-"), "gridbus.events")
    assert re.search(write, f"{service}.thing.happened")
    for other in b.event_owners() - {service}:
        assert not re.search(write, f"{other}.thing.happened")


@pytest.mark.parametrize("service", b.RPC_SERVERS)
def test_rpc_permissions_reach_only_the_services_own_queues(service):
    g = b.grant(service, "gridbus-")
    write, read = _topic(g, "nameko-rpc")
    assert re.search(read, f"{service}.*") and not re.search(read, "#") and not re.search(read, "*.*")
    assert re.search(write, f"{service}.health") and re.search(write, "0b5c1a8e-3f52-4a7e-9d1c-2e4f6a8b0c1d")
    for other in set(b.RPC_SERVERS) - {service}:
        assert not re.search(read, f"{other}.*") and not re.search(write, f"{other}.health")
        assert not re.search(g.read, f"rpc-{other}")
        assert not re.search(g.read, f"rpc.reply-gridbus-{other}-0b5c1a8e-3f52-4a7e-9d1c-2e4f6a8b0c1d")
    assert re.search(g.read, f"rpc.reply-gridbus-{service}-0b5c1a8e-3f52-4a7e-9d1c-2e4f6a8b0c1d")


def test_nobody_configures_the_shared_exchanges_and_only_subscriptions_writes_the_default_one():
    for g in b.grants("gridbus-"):
        for name in ("gridbus.events", "gridbus.dlx", "gridbus.levels"):
            assert not re.search(g.configure, name), (g.user, name)
        assert bool(re.search(g.write, "amq.default")) == (g.user == "gridbus-subscriptions")


def test_the_plan_sets_every_users_password_and_permissions():
    passwords = {g.user: f"pw-{g.user}" for g in b.grants("x-")}
    calls = b.plan("/", passwords, "x-")
    users = {c.path.rsplit("/", 1)[1]: c.body["password"] for c in calls if c.path.startswith("/api/users/")}
    assert users == passwords
    assert {c.path for c in calls if c.path.startswith("/api/permissions/")} == {
        f"/api/permissions/%2F/{u}" for u in passwords}


def test_passwords_come_from_each_services_uri_and_its_user_must_match():
    env = {b.env_name("incidents"): "amqp://x-incidents:s3cret@rabbitmq:5672/"}
    passwords = b.passwords_from(env, "x-")
    assert passwords["x-incidents"] == "s3cret" and len(passwords["x-grid"]) >= 24
    with pytest.raises(ValueError, match="x-dispatch"):
        b.passwords_from({b.env_name("dispatch"): "amqp://x-incidents:s3cret@rabbitmq:5672/"}, "x-")
    assert b.uri_for("amqp://admin:pw@rabbitmq:5672/v?heartbeat=5", "x-grid", "a/b") == \
        "amqp://x-grid:a%2Fb@rabbitmq:5672/v?heartbeat=5"


def test_the_users_are_the_registrys_services():
    from services import registry
    assert set(b.SERVICES) == {s.name for s in registry.SERVICES}
    assert set(b.RPC_SERVERS) == {s.name for s in registry.SERVICES if s.nameko}
