"""What the integration tests share: waiting on a condition, the services' processes, and the
event bus read as an outside system reads it. tests/README.md says when to use which."""
from __future__ import annotations

import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import kombu
from sqlalchemy import text

from shared.auth import mint_token
from shared.config import settings
from shared.health import check_grpc, check_nameko, wait_until

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metadata(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def token(role: str, *scope: str, member_id: str = "test-member") -> str:
    return mint_token(member_id, role, scope)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


# --- waiting ------------------------------------------------------------------------------

class _NotYet(Exception):
    pass


def wait_for(condition: Callable, timeout: float = 20.0, *, what: str | None = None,
             process: "Process | None" = None, interval: float = 0.05):
    """Calls `condition()` until it returns something truthy, and returns that.

    Raising counts as "not yet" (a server still starting). After `timeout` seconds, or as soon
    as `process` has exited, the test fails naming what it waited for (`what`, or the
    condition's source line), the last value or error seen, and the end of the process's log."""
    seen: dict = {}

    def check() -> None:
        try:
            value = condition()
        except Exception as exc:
            seen["last"] = f"{type(exc).__name__}: {exc}"
            raise
        seen["last"] = repr(value)
        if not value:
            raise _NotYet
        seen["value"] = value

    alive = (lambda: process.popen is not None and process.popen.poll() is None) if process else (lambda: True)
    try:
        wait_until(check, timeout, interval, alive)
    except Exception:
        ended = (f"{process.name} exited with {process.popen.returncode}" if process is not None and not alive()
                 else f"timed out after {timeout:g}s")
        lines = [f"{ended} waiting for {what or _source_of(condition)}", f"last seen: {seen.get('last', 'nothing')}"]
        if process is not None:
            lines.append(f"end of {process.name}'s log:\n{process.log()[-3000:]}")
        raise AssertionError("\n".join(lines)) from None
    return seen["value"]


def _source_of(condition: Callable) -> str:
    try:
        return " ".join(inspect.getsource(condition).split())[:300]
    except (OSError, TypeError):
        return repr(condition)


# --- processes ----------------------------------------------------------------------------

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

    def log_mark(self) -> int:
        """Where the log ends now; `log(since=mark)` reads what was written after."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log(self, since: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")


class ServiceProcess(Process):
    """A service's nameko, gRPC or HTTP process that can tell when it serves. As a context
    manager: started, waited for, and stopped at the end."""

    def __init__(self, args: list[str], env: dict, name: str, log_dir: Path, *,
                 serving: Callable[[], None], ready_timeout: float, port: int | None = None):
        super().__init__(args, env, name, log_dir)
        self.serving, self.ready_timeout, self.port = serving, ready_timeout, port

    def wait_ready(self) -> "ServiceProcess":
        """Returns once the process answers its health check; fails with its log if it dies first."""
        wait_for(lambda: self.serving() is None, self.ready_timeout, what=f"{self.name} to serve", process=self,
                 interval=0.2)
        return self

    def __enter__(self) -> "ServiceProcess":
        self.start()
        try:
            return self.wait_ready()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


# A nameko worker starts its consumers and the relay; a gRPC or HTTP server only binds a port.
READY_TIMEOUT = {"nameko": 60.0, "grpc": 30.0, "http": 30.0}


def service_process(environment: dict, service: str, kind: str, *, name: str | None = None,
                    env: dict | None = None) -> ServiceProcess:
    """The `kind` ("nameko", "grpc" or "http") process of a service in services/registry.py,
    with the argv `make run` uses (demo/services.py), on the test run's database and vhost, its
    API server on a free port of its own, logging to LOG_DIR/<name>.log. Not started yet:
    `with service_process(...) as proc:` starts it and waits until it serves; `proc.kill9()`,
    `proc.start()` and `proc.wait_ready()` restart it."""
    from demo.services import processes
    from services import registry

    from shared.broker_users import credentials, env_name, uri_for
    process = next(p for p in registry.BY_NAME[service].processes if p.kind == kind)
    argv = dict(processes()[service])[process.name]
    env = {**environment, **(env or {})}
    # The service's own broker user, as in a deployment (tests/conftest.py made it), at the broker
    # address GRIDBUS_AMQP_URI names (a test may give an AMQPS listener); its health probe calls as
    # that user too, as the deployments' probes do.
    if env_name(service) in env:
        env["GRIDBUS_AMQP_URI"] = uri_for(env["GRIDBUS_AMQP_URI"], *credentials(env[env_name(service)]))
    amqp_uri = env["GRIDBUS_AMQP_URI"]
    port = None
    spoken = settings(env)  # the health check speaks TLS when the process does
    if kind == registry.NAMEKO:
        def serving():
            check_nameko(amqp_uri, service, timeout=2, s=spoken)
    else:
        port = free_port()
        env[process.port.setting] = str(port)
        if kind == registry.GRPC:
            def serving():
                check_grpc(f"127.0.0.1:{port}", timeout=1, s=spoken)
        else:
            def serving():
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
    return ServiceProcess(argv, env, name or process.name, Path(environment["LOG_DIR"]),
                          serving=serving, ready_timeout=READY_TIMEOUT[kind], port=port)


@contextmanager
def running(*procs: ServiceProcess):
    """Starts the processes together, waits until each serves, and stops them all at the end."""
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.wait_ready()
        yield procs
    finally:
        for proc in procs:
            proc.stop()


# --- the event bus ------------------------------------------------------------------------

class QueueReader:
    """Takes messages from one queue with plain kombu, as an outside system would, and
    acknowledges each."""

    def __init__(self, amqp_uri: str, queue: str | kombu.Queue):
        self.connection = kombu.Connection(amqp_uri)
        self.queue = queue if isinstance(queue, kombu.Queue) else kombu.Queue(queue, no_declare=True)
        self.received: list[dict] = []
        self.raw: list[kombu.Message] = []

    def drain(self, until: Callable[[list[dict]], bool] | None = None, timeout: float = 10.0) -> list[dict]:
        """Every envelope taken so far. With `until`: takes messages until `until(envelopes)`
        holds or `timeout` passes. Without: takes what the queue holds now, without waiting
        (call it once something proves that all you expect has been published)."""
        deadline = time.monotonic() + timeout
        channel = self.connection.default_channel
        while until is None or (time.monotonic() < deadline and not until(self.received)):
            message = self.queue(channel).get(no_ack=False)
            if message is None:
                if until is None:
                    break
                time.sleep(0.05)
                continue
            self.raw.append(message)
            self.received.append(json.loads(message.body))
            message.ack()
        return self.received

    def close(self) -> None:
        self.connection.release()

    def __enter__(self) -> "QueueReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EventTap(QueueReader):
    """A subscriber of its own on the events exchange: an exclusive queue bound to `pattern`."""

    def __init__(self, amqp_uri: str, pattern: str = "#"):
        from shared.outbox import events_exchange
        queue = kombu.Queue(f"test-tap-{os.getpid()}-{time.monotonic_ns()}", events_exchange(),
                            routing_key=pattern, durable=False, auto_delete=True, exclusive=True)
        super().__init__(amqp_uri, queue)
        queue(self.connection.default_channel).declare()


def service_uri(service: str) -> str:
    """The broker URI of a service's own user in this test run (tests/conftest.py `environment`)."""
    from shared.broker_users import env_name
    return os.environ[env_name(service)]


def publish_event(amqp_uri: str, type_: str, data: dict, *, event_id: str | None = None,
                  subject: str = "test", source: str = "/gridbus/tests", body: bytes | None = None,
                  publisher: str | None = None) -> str:
    """Publishes one CloudEvent the way the relays do (or a raw `body`, for poison tests): as the
    broker user of the service that owns the type (or of `publisher`, a service), with that user
    as user_id. `amqp_uri` names the vhost; the credentials are the service's."""
    import uuid
    from datetime import datetime, timezone

    from shared.broker_users import credentials, owner, uri_for
    from shared.outbox import CONTENT_TYPE, events_exchange
    service = publisher or owner(type_)
    if service:
        user, password = credentials(service_uri(service))
        amqp_uri = uri_for(amqp_uri, user, password)
    event_id = event_id or str(uuid.uuid4())
    envelope = {"specversion": "1.0", "id": event_id, "source": source, "type": type_, "subject": subject,
                "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                "datacontenttype": "application/json", "sequence": "1", "data": data}
    with kombu.Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        producer.publish(body if body is not None else json.dumps(envelope).encode(), exchange=events_exchange(),
                         routing_key=type_, content_type=CONTENT_TYPE, content_encoding="utf-8",
                         delivery_mode=2, message_id=event_id, user_id=credentials(amqp_uri)[0],
                         declare=[events_exchange()])
    return event_id


def holds_message(amqp_uri: str, queue: str, message_id: str) -> bool:
    """Whether a queue (a dead-letter queue, which may also hold bodies that are no JSON) holds the
    message with this id; every message is looked at and left in the queue."""
    with kombu.Connection(amqp_uri) as conn:
        channel = conn.channel()
        seen = []
        while (m := channel.basic_get(queue)) is not None:
            seen.append(m.properties.get("message_id"))
        return message_id in seen  # none acknowledged: all back in the queue when the channel closes


def queue_depth(amqp_uri: str, name: str) -> int:
    """Messages ready in a queue (0 when it does not exist)."""
    with kombu.Connection(amqp_uri) as conn:
        try:
            return conn.default_channel.queue_declare(name, passive=True).message_count
        except Exception:
            return 0


def http_get(url: str, *, client: str | None = None, method: str = "GET", body: bytes | None = None,
             timeout: float = 10.0) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of a request; `client` is sent as X-Forwarded-For."""
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"X-Forwarded-For": client} if client else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, dict(reply.headers), json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


def _rabbitmqctl_json(amqp_uri: str, *args: str) -> list[dict]:
    vhost = urllib.parse.unquote(urllib.parse.urlparse(amqp_uri).path[1:]) or "/"
    out = subprocess.run(["rabbitmqctl", "-q", *args, "-p", vhost, "--formatter", "json"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return json.loads(out) if out.strip() else []


def queue_settled(amqp_uri: str, name: str) -> bool:
    """Every message published to the queue so far has been handled: none is ready, and its
    consumers' channels hold none unacknowledged (gridbus handlers acknowledge after their
    commit). The broker keeps quorum queues' own counts of unacknowledged messages only
    every few seconds, so they are read from the channels, which are exact. Ready first: a
    message on its way to a consumer is in neither count for a moment, and the channels, read
    after it, catch it."""
    if queue_depth(amqp_uri, name):
        return False
    channels = {c["channel_pid"] for c in _rabbitmqctl_json(amqp_uri, "list_consumers", "queue_name", "channel_pid")
                if c["queue_name"] == name}
    return not any(c["messages_unacknowledged"]
                   for c in _rabbitmqctl_json(amqp_uri, "list_channels", "pid", "messages_unacknowledged")
                   if c["pid"] in channels)


def outbox_published(schema: str) -> Callable[[], bool]:
    """A condition for wait_for: every event committed to `schema`'s outbox until now has been
    published. The relay marks a row after the broker confirmed it, so by then the event is in
    every queue bound to it, and a reader that takes what is there sees all it will ever get."""
    from shared.db import session_scope
    with session_scope() as s:
        last = s.execute(text(f"SELECT coalesce(max(id), 0) FROM {schema}.outbox")).scalar()

    def published() -> bool:
        with session_scope() as s:
            return not s.execute(text(f"SELECT 1 FROM {schema}.outbox WHERE published_at IS NULL "
                                      "AND id <= :last LIMIT 1"), {"last": last}).first()
    return published
