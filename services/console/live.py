"""Live updates for the console's pages: one broker consumer for the whole console process
(shared.changefeed), fanned out to each page's event stream, and only the events the page's
member may see (their scope covers the event's lineage)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading

from services.console import domain
from services.console.session import Session
from shared.changefeed import ChangeFeed

log = logging.getLogger(__name__)

PAGE_BUFFER = 500


class Listener:
    """One page's stream: what it may see, in order; ends when its session does."""

    def __init__(self, session: Session):
        self.session = session
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=PAGE_BUFFER)
        self.closed = False

    def close(self) -> None:
        """The stream ends after what it has; a waiting stream wakes at once."""
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class Hub:
    def __init__(self, amqp_uri: str):
        self._feed = ChangeFeed(amqp_uri, list(domain.LIVE_PATTERNS))
        self._listeners: set[Listener] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._source: queue.Queue | None = None
        self._stop = threading.Event()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Binds the console's queue on the broker and starts handing events to the loop."""
        self._loop = loop
        self._source = self._feed.subscribe()
        threading.Thread(target=self._pump, name="console-live", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._feed.stop()

    def listen(self, session: Session) -> Listener:
        listener = Listener(session)
        self._listeners.add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def session_ended(self, session: Session) -> None:
        """Called from any thread when a member signs out: their streams close."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._close_streams_of, session.id)

    def _close_streams_of(self, session_id: str) -> None:
        for listener in list(self._listeners):
            if listener.session.id == session_id:
                listener.close()

    def _pump(self) -> None:
        while not self._stop.is_set():
            try:
                event = self._source.get(timeout=1.0)
            except queue.Empty:
                continue
            message = domain.live_message(event)
            if message is not None:
                self._loop.call_soon_threadsafe(self._deliver, *message)

    def _deliver(self, lineages: list[list[str]], payload: dict) -> None:
        text = json.dumps(payload, ensure_ascii=False)
        for listener in list(self._listeners):
            if not domain.may_see(listener.session.principal, lineages):
                continue
            try:
                listener.queue.put_nowait(text)
            except asyncio.QueueFull:  # a page that stopped reading reloads instead of lagging
                log.warning("a console page is %d events behind; closing its stream", PAGE_BUFFER)
                listener.closed = True
