"""Every gridbus service in one list: its schema, the port of its API server, its processes,
its `gridbus` commands and its migrations. Migrations, the `gridbus` command line, the demo's
supervisor, deployment validation and event replay all read it; a test holds it against the
folders in services/, docker-compose.yml and k8s/.

Plain data: importing it imports no service."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shared import config

SERVICES_DIR = Path(__file__).resolve().parent
NAMEKO, GRPC, HTTP = "nameko", "grpc", "http"
# Every gRPC server serves TLS in production (shared/production.py TLS_NEEDS; docs/security.md#tls).
GRPC_SERVER_NEEDS = ("grpc_tls_cert", "grpc_tls_key")


# nameko's default. Handlers mostly wait on PostgreSQL, so a service whose events come in bursts
# takes more at once; one that serializes its writes (credit's chain) gains nothing from more.
DEFAULT_WORKERS = 10
MAX_WORKERS = 24


@dataclass(frozen=True)
class Port:
    setting: str   # the environment variable that moves it
    default: int


@dataclass(frozen=True)
class Process:
    name: str      # <service>-<kind>: its docker compose service and its Kubernetes Deployment
    kind: str      # nameko, grpc or http
    module: str    # what it runs: `python -m services.nameko_run <module>` or `python -m <module>`
    port: Port | None = None   # a server's: the port it listens on
    # Settings (Settings field names) it needs in production beyond shared/production.py EVERY_PROCESS_NEEDS.
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Service:
    name: str
    schema: str | None = None    # its PostgreSQL schema, migrated from services/<name>/migrations
    port: Port | None = None     # its API server's (gRPC, or the HTTP of Open311 and the console)
    http_port: Port | None = None  # its HTTP server's, when it has a gRPC server too (credit's public endpoint)
    nameko: str | None = None    # the nameko service module (RPC, event handlers, outbox relay)
    grpc: str | None = None      # the gRPC server module
    http: str | None = None      # the HTTP server module
    cli: str | None = None       # a module whose register(subparsers) adds `gridbus <name> ...`
    # What the services' database role may do in its schema (shared/migrations.py): audit tables
    # it may only append to (their migrations add the triggers), and tables it deletes rows from.
    append_only: tuple[str, ...] = ()
    deletes_from: tuple[str, ...] = ()
    # The keys each kind of its processes needs in production, beyond what every process needs
    # (shared/production.py EVERY_PROCESS_NEEDS): ((kind, (setting, ...)), ...). A process refuses to start
    # without them (config.start).
    needs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Its nameko container's max_workers, which nameko also uses as the prefetch of each of its
    # queues: how many events (and RPCs) it works on at once. GRIDBUS_<NAME>_NAMEKO_WORKERS moves it.
    workers: int = DEFAULT_WORKERS

    @property
    def workers_setting(self) -> str:
        return f"GRIDBUS_{self.name.upper()}_NAMEKO_WORKERS"

    def nameko_workers(self, env=None) -> int:
        """Its nameko container's workers (and prefetch), from its setting; at most MAX_WORKERS,
        so every worker gets a connection from the process's pool (shared/db.py) beside the
        relay's and the listeners'."""
        return _bounded_int(self.workers_setting, self.workers, 1, MAX_WORKERS, env)

    @property
    def processes(self) -> list[Process]:
        ports = {NAMEKO: None, GRPC: self.port, HTTP: self.http_port or self.port}
        needs = dict(self.needs)
        return [Process(f"{self.name}-{kind}", kind, module, ports[kind],
                        needs.get(kind, ()) + (GRPC_SERVER_NEEDS if kind == GRPC else ()))
                for kind, module in ((NAMEKO, self.nameko), (GRPC, self.grpc), (HTTP, self.http)) if module]

    @property
    def migrations(self) -> Path | None:
        return SERVICES_DIR / self.name / "migrations" if self.schema else None

    def port_number(self, kind: str = GRPC) -> int:
        """The port its API server (or its HTTP server) listens on, from its setting."""
        port = self.http_port or self.port if kind == HTTP else self.port
        return config.port(port.setting, port.default)


# In dependency order: a later service may read an earlier one's schema, so it migrates later.
SERVICES: tuple[Service, ...] = (
    Service("grid", schema="grid", port=Port("GRIDBUS_GRID_GRPC_PORT", 50051),
            nameko="services.grid.service", grpc="services.grid.grpc_server", cli="services.grid.cli",
            deletes_from=("assignments",)),
    Service("incidents", schema="incidents", port=Port("GRIDBUS_INCIDENTS_GRPC_PORT", 50052),
            nameko="services.incidents.service", grpc="services.incidents.grpc_server",
            cli="services.incidents.cli", append_only=("history",), workers=16),
    Service("dispatch", schema="dispatch", port=Port("GRIDBUS_DISPATCH_GRPC_PORT", 50053),
            nameko="services.dispatch.service", grpc="services.dispatch.grpc_server",
            cli="services.dispatch.cli", append_only=("task_history",), workers=16),
    Service("credit", schema="credit", port=Port("GRIDBUS_CREDIT_GRPC_PORT", 50054),
            http_port=Port("GRIDBUS_CREDIT_PUBLIC_HTTP_PORT", 8312), nameko="services.credit.service",
            grpc="services.credit.grpc_server", http="services.credit.public_http", cli="services.credit.cli",
            append_only=("records", "access_log", "repair_applications", "repair_decisions", "checkpoints"),
            # nameko takes closed cases in (identity numbers are keyed) and signs the chain's
            # checkpoints; gRPC looks people up and verifies checkpoints with the public keys alone.
            needs=((NAMEKO, ("credit_id_key", "credit_checkpoint_key")),
                   (GRPC, ("credit_id_key", "credit_checkpoint_verify_keys"))),
            workers=4),  # its writes queue on the chain's one lock: more would only wait there
    # Subscriptions' nameko side delivers every event, filtered, into subscribers' queues.
    Service("subscriptions", schema="subscriptions", port=Port("GRIDBUS_SUBSCRIPTIONS_GRPC_PORT", 50055),
            nameko="services.subscriptions.service", grpc="services.subscriptions.grpc_server", cli="services.subscriptions.cli",
            deletes_from=("subscriptions",)),
    # Sensors read grid.locate (a device's grid) and publish what incidents takes in once confirmed.
    Service("sensors", schema="sensors", port=Port("GRIDBUS_SENSORS_GRPC_PORT", 50056),
            nameko="services.sensors.service", grpc="services.sensors.grpc_server", cli="services.sensors.cli"),
    # Emergencies keep their own copy of officers' duty and positions, from grid's events.
    Service("emergencies", schema="emergencies", port=Port("GRIDBUS_EMERGENCIES_GRPC_PORT", 50057),
            nameko="services.emergencies.service", grpc="services.emergencies.grpc_server"),
    Service("open311", port=Port("GRIDBUS_OPEN311_HTTP_PORT", 8311), http="services.open311.http_server"),
    # The dispatch console calls grid, incidents and dispatch over gRPC; its schema holds saved filters.
    Service("console", schema="console", port=Port("GRIDBUS_CONSOLE_HTTP_PORT", 8080),
            http="services.console.server", deletes_from=("saved_filters",),
            needs=((HTTP, ("grpc_tls_ca",)),)),  # it dials the gRPC servers, over TLS in production
)
BY_NAME = {s.name: s for s in SERVICES}


def _bounded_int(name: str, default: int, low: int, high: int, env=None) -> int:
    """A whole number from the environment variable `name`, from `low` to `high`."""
    env = os.environ if env is None else env
    raw = env.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be a whole number, not {raw!r}")
    if not low <= value <= high:
        raise RuntimeError(f"{name} must be from {low} to {high}, not {value}")
    return value


def process(name: str) -> Process:
    return next(p for _, p in processes() if p.name == name)


METRICS_PORT_BASE = 9400


def metrics_port(name: str) -> int:
    """A process's own default metrics port, so the processes of one host do not collide
    (GRIDBUS_METRICS_PORT overrides it: in a cluster every pod uses one port)."""
    return METRICS_PORT_BASE + [p.name for _, p in processes()].index(name)


def start(name: str) -> config.Settings:
    """What every process calls first (its main, or services/nameko_run.py): its settings, checked;
    with GRIDBUS_ENV=production it exits, naming each variable, unless the keys and credentials
    it needs are real (config.start); then its JSON logs, traces and metrics endpoint
    (shared/observability.py)."""
    s = config.start(name, process(name).needs)
    from shared import observability
    from shared.logs import setup_logging
    setup_logging()
    observability.start(name, s, metrics_port(name))
    from shared import revocation_feed
    revocation_feed.start(s.amqp_uri, s.revocation_poll_seconds)  # revoked members' tokens refused here too
    return s


def port(service: str, kind: str = GRPC) -> int:
    """The port of a service's API server (kind HTTP: of its HTTP server)."""
    return BY_NAME[service].port_number(kind)


def schemas() -> tuple[str, ...]:
    return tuple(s.schema for s in SERVICES if s.schema)


def migrations() -> list:
    """Every service's schema (shared.migrations.Schema: its migrations folder, its audit tables
    and the tables it deletes from), in dependency order."""
    from shared.migrations import Schema
    return [Schema(s.schema, s.migrations, s.append_only, s.deletes_from) for s in SERVICES if s.schema]


def processes() -> list[tuple[Service, Process]]:
    return [(s, p) for s in SERVICES for p in s.processes]


def migrate(url: str | None = None, runtime_url: str | None = None) -> None:
    """Every service's schema to its newest revision, as the owner (`url`, default
    GRIDBUS_MIGRATION_DATABASE_URL), and the services' role (`runtime_url`'s) granted its share."""
    from shared.migrations import upgrade
    upgrade(migrations(), url, runtime_url)
