"""Helpers for integration tests: real processes on the real servers."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import kombu

from shared.auth import mint_token
from shared.health import check_grpc, wait_until

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metadata(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def token(role: str, *scope: str, member_id: str = "test-member") -> str:
    return mint_token(member_id, role, scope)


class Process:
    """A child process (a service, a relay) that tests can start, kill -9 and restart."""

    def __init__(self, args: list[str], env: dict, name: str, log_dir: Path):
        self.args, self.env, self.name = args, env, name
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self, extra_env: dict | None = None) -> "Process":
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(self.args, cwd=ROOT, env={**self.env, **(extra_env or {})},
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill9(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_healthy(proc: Process, check, timeout: float = 30.0) -> None:
    """Waits for `check` to pass; fails with the process's log when it dies or never serves."""
    try:
        wait_until(check, timeout, alive=lambda: proc.popen.poll() is None)
    except Exception as exc:
        raise RuntimeError(f"{proc.name} did not serve ({exc}):\n{proc.log()}")


def wait_for_grpc(port: int, proc: Process, timeout: float = 30.0) -> None:
    wait_healthy(proc, lambda: check_grpc(f"127.0.0.1:{port}", timeout=1), timeout)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


class EventTap:
    """A plain-kombu subscriber on the events exchange, as an outside system would be."""

    def __init__(self, amqp_uri: str, pattern: str = "#"):
        from shared.outbox import events_exchange
        self.connection = kombu.Connection(amqp_uri)
        self.queue = kombu.Queue(f"test-tap-{os.getpid()}-{time.monotonic_ns()}", events_exchange(),
                                 routing_key=pattern, durable=False, auto_delete=True, exclusive=True)
        self.queue(self.connection.default_channel).declare()
        self.received: list[dict] = []
        self.raw: list[kombu.Message] = []

    def drain(self, until=lambda events: False, timeout: float = 10.0) -> list[dict]:
        """Collects events until `until(events)` holds or the timeout passes."""
        deadline = time.monotonic() + timeout
        channel = self.connection.default_channel
        while time.monotonic() < deadline and not until(self.received):
            message = self.queue(channel).get(no_ack=False)
            if message is None:
                time.sleep(0.05)
                continue
            self.raw.append(message)
            self.received.append(json.loads(message.body))
            message.ack()
        return self.received

    def close(self) -> None:
        self.connection.release()


def publish_event(amqp_uri: str, type_: str, data: dict, *, event_id: str | None = None,
                  subject: str = "test", source: str = "/gridbus/tests", body: bytes | None = None) -> str:
    """Publishes one CloudEvent the way the relays do (or a raw `body`, for poison tests)."""
    import uuid
    from datetime import datetime, timezone

    from shared.outbox import CONTENT_TYPE, events_exchange
    event_id = event_id or str(uuid.uuid4())
    envelope = {"specversion": "1.0", "id": event_id, "source": source, "type": type_, "subject": subject,
                "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                "datacontenttype": "application/json", "sequence": "1", "data": data}
    with kombu.Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        producer.publish(body if body is not None else json.dumps(envelope).encode(), exchange=events_exchange(),
                         routing_key=type_, content_type=CONTENT_TYPE, content_encoding="utf-8",
                         delivery_mode=2, message_id=event_id, declare=[events_exchange()])
    return event_id


def queue_depth(amqp_uri: str, name: str) -> int:
    """Messages ready in a queue (0 when it does not exist)."""
    with kombu.Connection(amqp_uri) as conn:
        try:
            return conn.default_channel.queue_declare(name, passive=True).message_count
        except Exception:
            return 0


def wait_http(url: str, proc: Process, timeout: float = 30.0) -> None:
    """Waits for an HTTP health endpoint to answer 200."""
    import urllib.request

    def check():
        with urllib.request.urlopen(url, timeout=1) as reply:
            assert reply.status == 200
    wait_healthy(proc, check, timeout)


def http_get(url: str, *, client: str | None = None, method: str = "GET", body: bytes | None = None,
             timeout: float = 10.0) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of a request; `client` is sent as X-Forwarded-For."""
    import urllib.error
    import urllib.request
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"X-Forwarded-For": client} if client else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, dict(reply.headers), json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")
