"""Live events for streaming gRPC calls (Watch): one broker consumer per process, fanned out.

The feed holds one exclusive, auto-deleted queue bound to the events exchange, so a console
watching sees what happens from the moment it subscribes. It is a live view, not a history:
a console re-lists after reconnecting (or a subscriber uses a durable subscription)."""
from __future__ import annotations

import json
import logging
import queue
import threading

import kombu

from shared import tls
from shared.broker_users import from_owner
from shared.outbox import events_exchange

log = logging.getLogger(__name__)

WATCHER_BUFFER = 1000


class ChangeFeed:
    def __init__(self, amqp_uri: str, patterns: list[str]):
        self.amqp_uri = amqp_uri
        self.patterns = patterns
        self._watchers: set[queue.Queue] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()

    def subscribe(self, timeout: float = 10.0) -> queue.Queue:
        """A queue of envelopes; the feed is bound on the broker when this returns."""
        q: queue.Queue = queue.Queue(maxsize=WATCHER_BUFFER)
        with self._lock:
            self._watchers.add(q)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="changefeed", daemon=True)
                self._thread.start()
        self._ready.wait(timeout)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            self._watchers.discard(q)

    def stop(self) -> None:
        self._stop.set()

    def _fan_out(self, message) -> None:
        try:
            event = json.loads(message.body)
        except ValueError:
            message.ack()
            return
        if not isinstance(event, dict) or not from_owner(event, message.properties.get("user_id")):
            # Only what the owning service published (shared/broker_users.py) reaches watchers.
            log.error("change feed: dropping %r, not published by its owner's broker user",
                      event.get("type") if isinstance(event, dict) else event)
            message.ack()
            return
        with self._lock:
            watchers = list(self._watchers)
        for q in watchers:
            try:
                q.put_nowait(event)
            except queue.Full:  # a console that stopped reading loses the oldest view, not the server
                log.warning("a watcher is %d events behind; dropping its updates", WATCHER_BUFFER)
        message.ack()

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with tls.amqp_connection(self.amqp_uri, heartbeat=30) as conn:
                    channel = conn.channel()
                    q = kombu.Queue(exclusive=True, auto_delete=True, durable=False,
                                    bindings=[kombu.binding(events_exchange(), routing_key=p) for p in self.patterns])
                    with kombu.Consumer(channel, queues=[q], on_message=self._fan_out,
                                        auto_declare=True):
                        self._ready.set()
                        backoff = 0.5
                        while not self._stop.is_set():
                            try:
                                conn.drain_events(timeout=1)
                            except TimeoutError:
                                conn.heartbeat_check()
            except Exception as exc:  # broker gone: reconnect; watchers keep their streams
                self._ready.clear()
                log.warning("change feed: %s; reconnecting in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10)
