"""Pipelined publisher confirms on the real broker: many messages in flight, every one confirmed
before wait_confirms returns, and a message the broker refuses makes the batch fail."""
from __future__ import annotations

import uuid

import kombu
import pytest
from amqp.exceptions import MessageNacked

from shared.publisher import ConfirmedPublisher
from tests.support import queue_depth


def declare(uri: str, **arguments) -> str:
    name = f"test-publisher-{uuid.uuid4().hex[:8]}"
    with kombu.Connection(uri) as conn:
        kombu.Queue(name, durable=True, queue_arguments=arguments or None)(conn.default_channel).declare()
    return name


def send(publisher: ConfirmedPublisher, queue: str, n: int) -> None:
    for i in range(n):
        publisher.send(lambda producer, i=i: producer.publish(
            {"n": i}, exchange="", routing_key=queue, delivery_mode=2))


def test_every_message_in_flight_is_confirmed_and_stored(environment):
    uri = environment["GRIDBUS_AMQP_URI"]
    queue = declare(uri)
    with ConfirmedPublisher(uri, window=50) as publisher:  # more messages than the window
        send(publisher, queue, 1000)
        publisher.wait_confirms()
        send(publisher, queue, 10)  # the channel goes on after a batch
        publisher.wait_confirms()
    assert queue_depth(uri, queue) == 1010


def test_a_refused_message_fails_the_batch(environment):
    uri = environment["GRIDBUS_AMQP_URI"]
    queue = declare(uri, **{"x-max-length": 5, "x-overflow": "reject-publish"})  # the broker nacks the rest
    with ConfirmedPublisher(uri) as publisher:
        send(publisher, queue, 8)
        with pytest.raises(MessageNacked):
            publisher.wait_confirms()
    assert queue_depth(uri, queue) == 5
