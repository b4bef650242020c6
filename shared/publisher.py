"""Publishing with publisher confirms, many messages in flight.

kombu's `confirm_publish` transport option waits for the broker's confirm after every message:
one round trip and one disk sync per event, whatever the batch. RabbitMQ confirms a channel's
messages in the order of their delivery tags and may confirm many with one `multiple` ack, so
here the channel is put in confirm mode once (py-amqp's `confirm_select`), messages go out
without waiting, and the acks are counted as they come back: a batch costs about one sync.
kombu does this through its py-amqp channel, so no other AMQP client is needed."""
from __future__ import annotations

import time
from typing import Callable

import kombu
from amqp.exceptions import MessageNacked

from shared import tls

DEFAULT_WINDOW = 1000  # messages in flight at most, before waiting for some confirms


class ConfirmTimeout(ConnectionError):
    """The broker did not confirm in time; the caller treats the batch as not published."""


class ConfirmedPublisher:
    """`send(publish)` publishes (publish gets a kombu Producer) without waiting;
    `wait_confirms()` returns once the broker has confirmed everything sent, and raises
    MessageNacked or ConfirmTimeout otherwise. After a failure, close it and start again:
    which messages of the batch arrived is unknown, so the whole batch counts as unpublished."""

    def __init__(self, amqp_uri: str, *, window: int = DEFAULT_WINDOW, timeout: float = 30.0):
        self.amqp_uri, self.window, self.timeout = amqp_uri, window, timeout
        self._connection: kombu.Connection | None = None
        self._channel = None
        self._producer: kombu.Producer | None = None
        self._sent = 0          # delivery tags given so far on this channel (the nth message is tag n)
        self._pending: set[int] = set()
        self._nacked = 0

    def connect(self) -> kombu.Producer:
        if self._producer is None:
            self._connection = tls.amqp_connection(self.amqp_uri, heartbeat=0)
            self._connection.ensure_connection(max_retries=3)
            self._channel = self._connection.channel()
            self._channel.confirm_select()
            self._channel.events["basic_ack"].add(self._on_ack)
            self._channel.events["basic_nack"].add(self._on_nack)
            self._producer = kombu.Producer(self._channel, serializer="json")
            self._sent, self._pending, self._nacked = 0, set(), 0
        return self._producer

    @property
    def user_id(self) -> str:
        """The connection's broker user: what messages carry as their AMQP user_id, which the
        broker checks and consumers trust (shared/broker_users.py)."""
        self.connect()
        return self._connection.userid

    @property
    def channel(self):
        self.connect()
        return self._channel

    def _settle(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._pending = {t for t in self._pending if t > tag}
        else:
            self._pending.discard(tag)

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        before = len(self._pending)
        self._settle(tag, multiple)
        self._nacked += max(before - len(self._pending), 1)

    def send(self, publish: Callable[[kombu.Producer], None]) -> None:
        producer = self.connect()
        if len(self._pending) >= self.window:
            self._await(lambda: len(self._pending) < self.window)
        publish(producer)
        self._sent += 1
        self._pending.add(self._sent)

    def wait_confirms(self) -> None:
        self._await(lambda: not self._pending)
        if self._nacked:
            nacked, self._nacked = self._nacked, 0
            raise MessageNacked(f"the broker refused {nacked} message(s)")

    def _await(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConfirmTimeout(f"{len(self._pending)} message(s) unconfirmed after {self.timeout:.0f}s")
            try:
                self._connection.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                pass

    def close(self) -> None:
        connection, self._connection, self._channel, self._producer = self._connection, None, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # noqa: BLE001 - the broker is already gone; nothing to close cleanly
                pass

    def __enter__(self) -> "ConfirmedPublisher":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
