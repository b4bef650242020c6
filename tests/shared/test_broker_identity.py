"""The broker knows who published (shared/broker_users.py), on the real RabbitMQ: each service's
user publishes only its own events, every message's user_id is the connection's user, and
another user cannot read RPC requests or replies."""
from __future__ import annotations

import json
import uuid

import kombu
import pytest
from amqp.exceptions import AccessRefused, PreconditionFailed

from shared import broker_users
from shared.outbox import CONTENT_TYPE, events_exchange
from tests.support import service_uri


def _publish(uri: str, routing_key: str, *, user_id: str | None, exchange=None, body: dict | None = None) -> None:
    """Publishes and waits for the broker's confirm (a refusal closes the channel and raises)."""
    exchange = events_exchange() if exchange is None else exchange
    event_id = str(uuid.uuid4())
    body = body or {"specversion": "1.0", "id": event_id, "source": "/gridbus/incidents", "type": routing_key,
                    "subject": "incident/x", "time": "2026-01-01T00:00:00Z", "data": {}}
    with kombu.Connection(uri, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(json.dumps(body).encode(), exchange=exchange, routing_key=routing_key,
                                content_type=CONTENT_TYPE, delivery_mode=2, message_id=event_id,
                                **({"user_id": user_id} if user_id else {}))


def test_a_service_publishes_its_own_events(environment):
    uri = service_uri("incidents")
    _publish(uri, "incidents.incident.closed", user_id=broker_users.credentials(uri)[0])  # confirmed


def test_another_service_cannot_publish_an_incident_event(environment):
    """Dispatch's user, allowed to publish dispatch.*, is refused incidents.incident.closed."""
    uri = service_uri("dispatch")
    with pytest.raises(AccessRefused, match="incidents.incident.closed"):
        _publish(uri, "incidents.incident.closed", user_id=broker_users.credentials(uri)[0])


@pytest.mark.parametrize("service", ["console", "subscriptions"])
def test_services_without_events_publish_none(environment, service):
    uri = service_uri(service)
    with pytest.raises(AccessRefused):
        _publish(uri, f"{service}.anything.done", user_id=broker_users.credentials(uri)[0])


def test_a_message_claiming_another_user_is_refused(environment):
    """user_id is the connection's user, or the broker refuses the message."""
    uri = service_uri("dispatch")
    with pytest.raises(PreconditionFailed, match="user_id"):
        _publish(uri, "dispatch.task.completed", user_id=broker_users.user_name("incidents"))


def test_each_service_user_is_named_by_the_prefix(environment):
    for service in broker_users.SERVICES:
        assert broker_users.credentials(service_uri(service))[0] == broker_users.user_name(service)
    assert broker_users.expected_publisher("incidents.incident.closed") == broker_users.user_name("incidents")
    assert broker_users.expected_publisher("nobody.thing.happened") is None


# --- RPC: requests carry bearer tokens; nobody but the service reads them, nor its replies ----

def _declare_bound(uri: str, queue: str, exchange: str, key: str) -> None:
    with kombu.Connection(uri) as conn:
        kombu.Queue(queue, kombu.Exchange(exchange, type="topic", durable=True), routing_key=key,
                    auto_delete=True)(conn.default_channel).declare()


@pytest.mark.parametrize("key", ["#", "incidents.*", "*.*", "incidents.health"])
def test_another_user_cannot_bind_a_queue_to_the_rpc_exchange_for_others_requests(environment, key):
    """Dispatch's user may make queues of its own (gridbus.dispatch.*) but not bind one to
    nameko-rpc with another service's keys, nor with `#`."""
    with pytest.raises(AccessRefused, match="nameko-rpc"):
        _declare_bound(service_uri("dispatch"), f"gridbus.dispatch.spy-{uuid.uuid4().hex}", "nameko-rpc", key)


@pytest.mark.parametrize("spy", ["dispatch", "subscriptions", "console"])
def test_another_user_cannot_read_a_services_rpc_queue_or_its_replies(environment, incidents_nameko, spy):
    incidents_user = broker_users.user_name("incidents")
    reply = f"rpc.reply-{incidents_user}-{uuid.uuid4()}"
    _declare_bound(service_uri("incidents"), reply, "nameko-rpc", reply[-36:])  # as a proxy of incidents does
    for queue in ("rpc-incidents", reply):
        with kombu.Connection(service_uri(spy)) as conn:
            with pytest.raises(AccessRefused, match=queue):
                conn.default_channel.basic_get(queue)


def test_a_service_user_calls_its_own_health_rpc_and_no_other(environment, incidents_nameko):
    from shared.health import check_nameko
    check_nameko(service_uri("incidents"), "incidents")          # its probe works with its own user
    with pytest.raises(AccessRefused, match="incidents.health"):
        check_nameko(service_uri("dispatch"), "incidents")        # dispatch may not call incidents


def test_the_shared_exchanges_cannot_be_deleted_by_a_service(environment):
    for service in broker_users.SERVICES:
        with kombu.Connection(service_uri(service)) as conn:
            with pytest.raises(AccessRefused):
                conn.default_channel.exchange_delete("gridbus.events")


def test_gridbus_broker_users_keeps_the_passwords_it_is_given(environment, capsys):
    """The CLI, run again with every service's URI (as the k8s Job is), changes no password."""
    from services.cli import main
    main(["broker", "users"])
    out = capsys.readouterr().out
    for service in (*broker_users.SERVICES, broker_users.LINK):
        assert f"{broker_users.user_name(service)}: permissions set" in out
    assert "amqp://" not in out                       # no new password printed
    _publish(service_uri("grid"), "grid.member.updated", user_id=broker_users.user_name("grid"))
