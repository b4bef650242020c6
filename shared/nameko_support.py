"""nameko pieces every service uses: the caller's identity and the outbox relay."""
from __future__ import annotations

import logging

import eventlet.patcher
import psycopg.waiting
from nameko.extensions import DependencyProvider

from shared.auth import Principal, principal_from_header
from shared.config import settings
from shared.db import engine
from shared.outbox import Relay

# Under nameko, eventlet has patched select, but psycopg (which only detects gevent) still waits
# for the server in C poll(), blocking every green thread of the process while a query runs, or
# while the outbox relay waits for a NOTIFY. Its select()-based wait yields to the hub instead.
# Not optional: with the C wait the relay's LISTEN would freeze the process between events.
if eventlet.patcher.is_monkey_patched("select"):
    psycopg.waiting.wait = psycopg.waiting.wait_select

log = logging.getLogger(__name__)

AUTH_CONTEXT_KEY = "authorization"


class Caller(DependencyProvider):
    """`caller = Caller()`; `self.caller()` is the verified Principal of the RPC's caller.

    Callers put `Bearer <token>` under the `authorization` key of nameko's context data
    (ClusterRpcProxy(config, context_data={...}); nameko carries it from call to call)."""

    def get_dependency(self, worker_ctx):
        def principal() -> Principal:
            return principal_from_header(worker_ctx.data.get(AUTH_CONTEXT_KEY))
        return principal


class OutboxRelay(DependencyProvider):
    """Runs the service's outbox relay in a managed thread for as long as the container runs."""

    def __init__(self, schema: str):
        self.schema = schema
        self.relay: Relay | None = None

    def setup(self):
        s = settings()
        self.relay = Relay(engine(self.container.config.get("DATABASE_URL") or s.database_url),
                           self.container.config["AMQP_URI"], self.schema)

    def start(self):
        self.container.spawn_managed_thread(self.relay.run, identifier=f"outbox-relay-{self.schema}")

    def stop(self):
        self.relay.stop()

    def kill(self):
        self.relay.stop()

    def get_dependency(self, worker_ctx):
        # Entry points may nudge the relay right after committing, to cut latency.
        return self.relay.wake


def nameko_config(s, workers: int | None = None) -> dict:
    """The nameko container's configuration from gridbus's settings (services/nameko_run.py);
    `workers`: its max_workers, which nameko's queue consumer also takes as each queue's prefetch
    (services/registry.py Service.workers)."""
    from nameko.constants import DEFAULT_MAX_WORKERS, MAX_WORKERS_CONFIG_KEY

    from shared import tls
    return {"AMQP_URI": s.amqp_uri, "AMQP_SSL": tls.amqp_ssl(s),  # None: plaintext amqp://
            MAX_WORKERS_CONFIG_KEY: workers or DEFAULT_MAX_WORKERS}
