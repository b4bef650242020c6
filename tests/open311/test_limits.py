"""Open311 under abuse, against the real server over raw sockets: bodies too large (by their
Content-Length, chunked, or a Content-Length of -1), bodies and headers that trickle in, too
many connections at once, too many requests from one client."""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from services.open311.http_server import MAX_BODY_BYTES
from shared.health import wait_until
from tests.support import Process, free_port, python

RATE = 5  # per minute per client
MAX_CONCURRENCY = 3
THIRTEEN_MB = 13 * 1024 * 1024


def _server(environment, name: str, settings: dict):
    port = free_port()
    proc = Process(python("-m", "services.open311.http_server"),
                   {**environment, "GRIDBUS_OPEN311_HTTP_PORT": str(port), **settings}, name,
                   Path(environment["LOG_DIR"])).start()

    def healthy():
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert s.recv(64).startswith(b"HTTP/1.1 200")
    try:
        wait_until(healthy, 30, alive=lambda: proc.popen.poll() is None)
    except BaseException:
        proc.stop()
        raise
    return proc, port


@pytest.fixture(scope="module")
def tight(environment, categories):
    """Timeouts of a second, and RATE requests a minute per client."""
    proc, port = _server(environment, "open311-tight", {
        "GRIDBUS_PUBLIC_HEADER_TIMEOUT_SECONDS": "1", "GRIDBUS_PUBLIC_BODY_TIMEOUT_SECONDS": "1",
        "GRIDBUS_PUBLIC_RATE_LIMIT": f"{RATE}/minute"})
    yield port
    proc.stop()


@pytest.fixture(scope="module")
def narrow(environment, categories):
    """At most MAX_CONCURRENCY connections and requests at once."""
    proc, port = _server(environment, "open311-narrow", {"GRIDBUS_PUBLIC_MAX_CONCURRENCY": str(MAX_CONCURRENCY)})
    yield port
    proc.stop()


@contextmanager
def connection(port: int, head: str, client: str = "192.0.2.1"):
    """A raw connection that has sent a request's head (request line and headers, and the blank
    line when `head` ends with one); X-Forwarded-For names the client."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    line, _, rest = head.partition("\r\n")
    s.sendall(f"{line}\r\nHost: test\r\nX-Forwarded-For: {client}\r\n{rest}".encode())
    try:
        yield s
    finally:
        s.close()


def answer(s: socket.socket) -> tuple[int, dict, bytes]:
    reply = http.client.HTTPResponse(s)
    reply.begin()
    return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()


def closed_by_server(s: socket.socket) -> bool:
    """True once the server has closed the connection (reads end, or are reset)."""
    try:
        return s.recv(65536) == b""
    except ConnectionResetError:
        return True


class Sender(threading.Thread):
    """Sends `chunks` one after another, `pause` seconds apart, until the server stops it."""

    def __init__(self, s: socket.socket, chunks, pause: float = 0.0):
        super().__init__(daemon=True)
        self.s, self.chunks, self.pause = s, chunks, pause
        self.sent, self.stopped_by_server = 0, False

    def run(self) -> None:
        try:
            for chunk in self.chunks:
                self.s.sendall(chunk)
                self.sent += len(chunk)
                time.sleep(self.pause)
        except OSError:
            self.stopped_by_server = True


def test_a_negative_content_length_is_refused_at_once_and_nothing_of_the_body_is_read(tight):
    """The finding: `Content-Length: -1` and 13 MB were accepted and never answered."""
    with connection(tight, "POST /open311/v2/requests.json HTTP/1.1\r\nContent-Length: -1\r\n\r\n") as s:
        status, _, body = answer(s)
        assert status == 400 and b"Invalid HTTP request" in body
        sender = Sender(s, (b"x" * 65536 for _ in range(THIRTEEN_MB // 65536)))
        sender.start()
        sender.join(60)
        assert sender.stopped_by_server and sender.sent < THIRTEEN_MB


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_body_over_the_limit_by_its_content_length_is_413(tight, fmt):
    head = f"POST /open311/v2/requests.{fmt} HTTP/1.1\r\nContent-Length: {THIRTEEN_MB}\r\n\r\n"
    with connection(tight, head, client=f"192.0.2.10{fmt == 'xml'}") as s:
        status, headers, body = answer(s)
        assert status == 413 and headers["connection"] == "close"
        if fmt == "json":
            assert json.loads(body) == [{"code": 413, "description": f"the body is limited to {MAX_BODY_BYTES} bytes"}]
        else:
            assert ET.fromstring(body).find("error").findtext("code") == "413"
        assert closed_by_server(s)


def test_a_chunked_body_is_counted_as_it_arrives_and_refused_past_the_limit(tight):
    head = "POST /open311/v2/requests.json HTTP/1.1\r\nTransfer-Encoding: chunked\r\n" \
           "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
    with connection(tight, head, client="192.0.2.11") as s:
        piece = b"a" * 16384
        sender = Sender(s, (b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(THIRTEEN_MB // len(piece))))
        sender.start()
        status, _, body = answer(s)
        sender.join(60)
        assert status == 413 and json.loads(body)[0]["code"] == 413
        assert sender.stopped_by_server and sender.sent < THIRTEEN_MB


def test_a_body_that_trickles_in_is_cut_off_at_its_deadline(tight):
    """A slow-loris body: a byte every 0.2 s, each well within any per-read timeout, would take
    200 s; the body's whole deadline (1 s here) ends it with 408."""
    head = "POST /open311/v2/requests.json HTTP/1.1\r\nContent-Length: 1000\r\n" \
           "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
    with connection(tight, head, client="192.0.2.12") as s:
        sender = Sender(s, (b"a" for _ in range(1000)), pause=0.2)
        sender.start()
        status, headers, body = answer(s)
        assert status == 408 and json.loads(body)[0]["code"] == 408 and headers["connection"] == "close"
        assert closed_by_server(s)
        sender.join(30)
        assert sender.sent < 1000


def test_headers_that_trickle_in_are_cut_off(tight):
    """A slow-loris on the headers: a header line every 0.2 s; the connection is closed, unanswered."""
    with connection(tight, "GET /open311/v2/services.json HTTP/1.1\r\n", client="192.0.2.13") as s:
        sender = Sender(s, (f"X-Slow-{i}: 1\r\n".encode() for i in range(1000)), pause=0.2)
        sender.start()
        assert closed_by_server(s)
        sender.join(30)
        assert sender.sent < len(b"X-Slow-999: 1\r\n") * 1000


def test_too_many_requests_from_one_client_get_429_with_retry_after(tight):
    def get(client: str, fmt: str = "json"):
        with connection(tight, f"GET /open311/v2/services.{fmt} HTTP/1.1\r\nConnection: close\r\n\r\n", client) as s:
            return answer(s)
    assert [get("198.51.100.7")[0] for _ in range(RATE)] == [200] * RATE
    status, headers, body = get("198.51.100.7")
    assert status == 429 and 1 <= int(headers["retry-after"]) <= 60
    assert json.loads(body)[0]["code"] == 429 and "retry in" in json.loads(body)[0]["description"]
    status, _, body = get("198.51.100.7", "xml")
    assert status == 429 and ET.fromstring(body).find("error").findtext("code") == "429"
    assert get("198.51.100.8")[0] == 200  # another client


def test_connections_past_the_limit_get_503(narrow):
    held = [socket.create_connection(("127.0.0.1", narrow), timeout=30) for _ in range(MAX_CONCURRENCY)]
    for s in held:  # requests waiting for a body that does not come
        s.sendall(b"POST /open311/v2/requests.json HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")

    def probe() -> int:
        with connection(narrow, "GET /open311/v2/discovery.json HTTP/1.1\r\nConnection: close\r\n\r\n") as s:
            return answer(s)[0]
    def answers(status: int):
        def check():
            assert probe() == status
        return check
    try:
        wait_until(answers(503), 20)
    finally:
        for s in held:
            s.close()
    wait_until(answers(200), 20)  # once the connections closed
