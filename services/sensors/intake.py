"""Alarm intake: RabbitMQ's MQTT plugin routes each device's messages to `amq.topic` (topic
sensors/<id>/alarm becomes routing key sensors.<id>.alarm); one durable queue takes them all,
and a consumer takes them in batches, one transaction a batch, acknowledging after the commit.
What cannot be taken (malformed, an unknown device) goes to the dead-letter queue with its reason."""
from __future__ import annotations

import logging
import socket
import threading

import kombu
from nameko.extensions import DependencyProvider

from services.sensors import operations as ops
from shared import tls
from shared.broker_users import DLX

log = logging.getLogger(__name__)

MQTT_EXCHANGE = kombu.Exchange("amq.topic", type="topic", durable=True, no_declare=True)
DEAD_LETTERS = kombu.Exchange(DLX, type="direct", durable=True, passive=True)
QUEUE = "gridbus.sensors.alarms"
REJECTED_QUEUE = "gridbus.sensors.rejected"
REASON_HEADER = "x-gridbus-reason"
BATCH = 500          # messages at most in one transaction (and the prefetch)
GATHER_SECONDS = 0.05  # how long a batch waits for more once one message is in


def alarms_queue() -> kombu.Queue:
    return kombu.Queue(QUEUE, durable=True, queue_arguments={"x-queue-type": "quorum"},
                       bindings=[kombu.binding(MQTT_EXCHANGE, routing_key="sensors.*.alarm"),
                                 kombu.binding(MQTT_EXCHANGE, routing_key="sensors.*.heartbeat")])


def rejected_queue() -> kombu.Queue:
    # Reached through the dead-letter exchange: sensors' broker user may not write to the default
    # exchange (which reaches every queue) (shared/broker_users.py).
    return kombu.Queue(REJECTED_QUEUE, exchange=DEAD_LETTERS, routing_key=REJECTED_QUEUE, durable=True,
                       queue_arguments={"x-queue-type": "quorum"})


class Consumer:
    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self._stop = threading.Event()
        self.ready = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                with tls.amqp_connection(self.amqp_uri, heartbeat=30) as conn:
                    self._consume(conn)
            except (OSError, kombu.exceptions.OperationalError, ConnectionError) as exc:
                log.warning("alarm intake: broker connection lost (%s); reconnecting", exc)
                self._stop.wait(1)

    def _consume(self, conn: kombu.Connection) -> None:
        channel = conn.channel()
        alarms_queue()(channel).declare()
        rejected_queue()(channel).declare()
        batch: list = []
        consumer = kombu.Consumer(channel, queues=[alarms_queue()], on_message=batch.append, prefetch_count=BATCH)
        with consumer:
            self.ready.set()
            while not self._stop.is_set():
                try:
                    conn.drain_events(timeout=1)
                except (socket.timeout, TimeoutError):
                    continue
                while len(batch) < BATCH:
                    try:
                        conn.drain_events(timeout=GATHER_SECONDS)
                    except (socket.timeout, TimeoutError):
                        break
                if batch:
                    self._take(conn, batch)
                    batch.clear()

    def _take(self, conn: kombu.Connection, batch: list) -> None:
        result = ops.ingest([(m.delivery_info["routing_key"], m.body) for m in batch])
        if result.rejected:
            producer = conn.Producer()
            for i, reason in result.rejected:
                m = batch[i]
                producer.publish(m.body, exchange=DEAD_LETTERS, routing_key=REJECTED_QUEUE, delivery_mode=2,
                                 headers={REASON_HEADER: reason, "x-gridbus-routing-key": m.delivery_info["routing_key"]})
                log.warning("alarm rejected (%s): %s", m.delivery_info["routing_key"], reason)
        # After the commit: a crash before this redelivers the batch, and repeats only count twice.
        batch[-1].channel.basic_ack(batch[-1].delivery_tag, multiple=True)
        if result.opened:
            log.info("%d alarms, %d heartbeats: %d suspected cases opened", result.alarms, result.heartbeats,
                     len(result.opened))


class AlarmIntake(DependencyProvider):
    """Runs the alarm consumer in a managed thread while the nameko container runs."""

    def setup(self):
        self.consumer = Consumer(self.container.config["AMQP_URI"])

    def start(self):
        self.container.spawn_managed_thread(self.consumer.run, identifier="sensors-alarm-intake")

    def stop(self):
        self.consumer.stop()

    def kill(self):
        self.consumer.stop()
