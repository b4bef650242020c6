"""Configuration from the environment, read in one place.

Every setting is a field of `Settings`, read from `GRIDBUS_<FIELD NAME>` (`token_key` from
GRIDBUS_TOKEN_KEY), typed and checked; a bad value stops the process with the variable's name.
The defaults here are the ones README's configuration table documents (a test holds the two
together). Servers' ports are per service: `port()` reads one, for services/registry.py."""
from __future__ import annotations

import base64
import binascii
import functools
import logging
import math
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "postgresql+psycopg://root@127.0.0.1:5432/gridbus"
# Only good for a laptop: the tests and the demo mint their own tokens with it ("key id:base64
# Ed25519 seed"; its public half verifies them).
INSECURE_DEV_TOKEN_KEY = "dev-token:q59qf1HiE68NyM0Q1o9mnaSLcy5mdZxRLIgdLT2SDNE="
# Keys the credit registry's identity-number lookups; losing it makes them unfindable.
INSECURE_DEV_ID_KEY = "gridbus-dev-id-key-not-for-production-9876543210"
# Signs the credit chain's checkpoints ("key id:base64 Ed25519 seed"); its public half verifies them.
INSECURE_DEV_CHECKPOINT_KEY = "dev-checkpoint:AO2OryMj6A9rObLmS0XQ+g26TW5wPwFfoqiEGOEp/8Q="
# Every INSECURE_DEV_* value above (and the public half of each Ed25519 one) is refused in production.

# What the deployment files (k8s/) put where an operator must put a secret: a value containing it
# is refused in production. Never in a real key: not in base64 or hex, nor a generated password.
PLACEHOLDER = "REPLACE_ME"
PRODUCTION, DEVELOPMENT = "production", "development"
# RabbitMQ's built-in account: what a fresh broker lets in, so never production's.
DEFAULT_BROKER_USER = "guest"

EVENTS_EXCHANGE = "gridbus.events"
PREFIX = "GRIDBUS_"

MIN_KEY_BYTES = 32
MIN_API_KEY_CHARACTERS = 16


# Each parser turns a variable's text into its value, or raises ValueError saying what it must be.

def _text(raw: str) -> str:
    return raw


def _optional(raw: str) -> str | None:
    return raw or None


def _key(raw: str) -> str:
    if len(raw.encode()) < MIN_KEY_BYTES:
        raise ValueError(f"must be at least {MIN_KEY_BYTES} bytes")
    return raw


def _environment(raw: str) -> str:
    if raw not in (DEVELOPMENT, PRODUCTION):
        raise ValueError(f"must be {DEVELOPMENT} or {PRODUCTION}, not {raw!r}")
    return raw


def _positive(convert: Callable[[str], float], what: str) -> Callable[[str], Any]:
    def parse(raw: str):
        try:
            value = convert(raw)
        except ValueError:
            raise ValueError(f"must be {what}, not {raw!r}")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"must be {what} above 0, not {raw}")
        return value
    return parse


_positive_int = _positive(int, "a whole number")
_positive_number = _positive(float, "a finite number")


def _log_level(raw: str) -> str:
    if raw not in logging.getLevelNamesMapping():
        raise ValueError(f"must be a logging level (DEBUG, INFO, WARNING, ERROR), not {raw!r}")
    return raw


def _rate(raw: str) -> str:
    """A rate in the `limits` library's notation: 60/minute, 5/second, 1000 per hour."""
    import limits
    try:
        if limits.parse(raw).amount > 0:
            return raw
    except ValueError:
        pass
    raise ValueError(f"must be a rate such as 60/minute or 5/second, not {raw!r}")


_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _ed25519_key(raw: str) -> tuple[str, bytes]:
    """`key-id:base64`: an Ed25519 key of 32 bytes (a private seed, or a public key) and its id."""
    key_id, colon, encoded = raw.partition(":")
    if not colon or not _KEY_ID.fullmatch(key_id):
        raise ValueError("must be key-id:base64 (a key id of letters, digits, '.', '_' or '-', then a colon)")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be key-id:base64, and {encoded[:8]!r}... is not base64")
    if len(key) != 32:
        raise ValueError(f"must hold a 32-byte Ed25519 key, not {len(key)} bytes")
    return key_id, key


def _ed25519_key_text(raw: str) -> str:
    """An Ed25519 `key-id:base64` checked, kept as written (shared/auth.py reads it)."""
    _ed25519_key(raw)
    return raw


def _ed25519_keys(raw: str) -> dict[str, bytes]:
    """`key-id:base64,key-id2:base64`: Ed25519 public keys by key id (two during a rotation)."""
    return dict(_ed25519_key(item.strip()) for item in raw.split(",") if item.strip())


def _api_keys(raw: str) -> dict[str, str]:
    """`key=client,key2=client2`; keys shorter than 16 characters are ignored (too guessable)."""
    pairs = [p.split("=", 1) for p in raw.split(",") if "=" in p]
    return {k.strip(): v.strip() for k, v in pairs if len(k.strip()) >= MIN_API_KEY_CHARACTERS}


def _time_zone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"must be an IANA time zone such as Asia/Shanghai, not {raw!r}") from None
    return raw


def _tile_url(raw: str) -> str | None:
    """An http(s) URL template of raster tiles with {z}, {x} and {y}; empty: none."""
    if not raw:
        return None
    if not raw.startswith(("https://", "http://")) or not all(p in raw for p in ("{z}", "{x}", "{y}")):
        raise ValueError(f"must be an http(s) URL with {{z}}, {{x}} and {{y}} in it, not {raw!r}")
    return raw


def _deployment(raw: str) -> str | None:
    """A DNS label naming this deployment in its events' sources (e.g. a division code)."""
    if raw and not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", raw):
        raise ValueError(f"must be a lower-case DNS label such as 130102 or shijiazhuang, not {raw!r}")
    return raw or None


def _port_number(raw: str) -> int:
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise ValueError(f"must be a port number (0 to 65535), not {raw!r}")
    return int(raw)


def _http_url(raw: str) -> str:
    if not raw.startswith(("https://", "http://")):
        raise ValueError(f"must be an http(s) URL, not {raw!r}")
    return raw.rstrip("/")


TRANSPORTS = ("grpc", "amqp", "database")


def _transports(raw: str) -> frozenset[str]:
    """Comma-separated links from TRANSPORTS."""
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    if names - set(TRANSPORTS):
        raise ValueError(f"must name links from {', '.join(TRANSPORTS)}, not {', '.join(sorted(names - set(TRANSPORTS)))}")
    return names


KEY, CREDENTIALS = "key", "credentials"


def _setting(default: str, parse: Callable[[str], Any] = _text, *, documented: str | None = None,
             guards: str | None = None):
    """A field read from its environment variable; `documented` is how README's table shows a
    default that is no literal value (a development key, a bundled file). `guards`: what the
    production check (`production_problems`) holds it to: KEY (a key: never a development or
    placeholder value) or CREDENTIALS (a server URL: never the default account, a placeholder, or no
    password)."""
    return field(metadata={"default": default, "parse": parse, "documented": documented, "guards": guards})


@dataclass(frozen=True)
class Settings:
    # production: every process refuses to start on a development, placeholder or missing key,
    # or default credentials (check_production).
    env: str = _setting(DEVELOPMENT, _environment)
    amqp_uri: str = _setting(DEFAULT_AMQP_URI, guards=CREDENTIALS)
    # Which deployment publishes (a county's, a city's, a province's): its events' source is
    # /gridbus/<deployment>/<service>; None: /gridbus/<service> (a single deployment).
    deployment: str | None = _setting("", _deployment, documented="none")
    # RabbitMQ's management API, an administrator's, for `gridbus levels` (federation between
    # deployments) and `gridbus broker users`; where it is set, production refuses default credentials.
    broker_management_url: str = _setting("http://guest:guest@127.0.0.1:15672", _http_url, guards=CREDENTIALS)
    # Each service's broker user is <prefix><service> (shared/broker_users.py); consumers accept an
    # event only from the user of the service that owns its type.
    broker_user_prefix: str = _setting("gridbus-")  # shared/broker_users.py PREFIX
    # The services' role: reads and writes rows, owns nothing (docs/security.md).
    database_url: str = _setting(DEFAULT_DATABASE_URL, guards=CREDENTIALS)
    # The owner's: `gridbus migrate` creates and alters the schemas with it, and grants the
    # services' role what it needs. None: GRIDBUS_DATABASE_URL's (one role, for development).
    migration_database_url: str | None = _setting("", _optional, documented="`GRIDBUS_DATABASE_URL`",
                                                  guards=CREDENTIALS)
    # Access tokens: signed with this Ed25519 key (`key-id:base64` seed), verified with its public
    # half and these public keys (a rotation's other key).
    token_key: str = _setting(INSECURE_DEV_TOKEN_KEY, _ed25519_key_text, documented="a development key", guards=KEY)
    token_verify_keys: Mapping[str, bytes] = _setting("", _ed25519_keys, documented="none", guards=KEY)
    token_ttl_seconds: int = _setting(str(12 * 3600), _positive_int)
    # Sign-in (services/grid/signin.py): the access token's and the session's lifetimes, failures
    # before a lock and its length.
    signin_access_ttl_seconds: int = _setting("600", _positive_int)
    signin_session_seconds: int = _setting(str(12 * 3600), _positive_int)
    signin_max_failures: int = _setting("5", _positive_int)
    signin_lock_seconds: float = _setting("900", _positive_number)
    # Every process reads grid's revoked sessions this often, besides hearing grid's event
    # (shared/revocation_feed.py): the longest a revoked token may still work if the event is lost.
    revocation_poll_seconds: float = _setting("10", _positive_number)
    # The bearer token `gridbus` commands send to the gRPC APIs (their --token).
    token: str | None = _setting("", _optional, documented="none")
    open311_api_keys: Mapping[str, str] = _setting("", _api_keys, documented="empty", guards=KEY)
    credit_id_key: str = _setting(INSECURE_DEV_ID_KEY, _key, documented="a development key", guards=KEY)
    # None: the file bundled with the service.
    credit_rules: str | None = _setting("", _optional, documented="the bundled file")
    credit_sweep_seconds: float = _setting("60", _positive_number)
    # The credit chain's signed checkpoints: how often, the signing key (credit's nameko processes
    # only), and the public keys that verify them (empty: the signing key's public half).
    credit_checkpoint_seconds: float = _setting("3600", _positive_number)
    credit_checkpoint_key: tuple[str, bytes] = _setting(INSECURE_DEV_CHECKPOINT_KEY, _ed25519_key,
                                                        documented="a development key", guards=KEY)
    credit_checkpoint_verify_keys: Mapping[str, bytes] = _setting("", _ed25519_keys, documented="none", guards=KEY)
    dispatch_calendar: str | None = _setting("", _optional, documented="the bundled file")
    dispatch_evaluation: str | None = _setting("", _optional, documented="the bundled file")
    dispatch_time_limits: str | None = _setting("", _optional, documented="the bundled file")
    dispatch_assign_minutes: float = _setting("30", _positive_number)
    dispatch_escalation_minutes: float = _setting("60", _positive_number)
    duplicate_radius_m: float = _setting("50", _positive_number)
    duplicate_window_hours: float = _setting("24", _positive_number)
    log_level: str = _setting("INFO", _log_level)
    # Public HTTP endpoints (shared/public_http.py): requests per client, connections and requests
    # at once per process, and the proxies whose X-Forwarded-For names the client.
    public_rate_limit: str = _setting("60/minute", _rate)
    public_max_concurrency: int = _setting("64", _positive_int)
    public_forwarded_allow_ips: str = _setting("127.0.0.1")
    # A request's headers must be complete this long after its connection opens, and its body
    # this long after its headers.
    public_header_timeout_seconds: float = _setting("10", _positive_number)
    public_body_timeout_seconds: float = _setting("10", _positive_number)
    # Every gRPC server (shared/grpc_limits.py): RPCs at once per process, messages in a client
    # stream, a server stream's life, and requests per caller (a service's are not counted).
    grpc_max_concurrent_rpcs: int = _setting("100", _positive_int)
    grpc_max_stream_messages: int = _setting("10000", _positive_int)
    grpc_max_stream_seconds: float = _setting("3600", _positive_number)
    grpc_rate_limit: str = _setting("3000/minute", _rate)
    # The dispatch console (services/console): the address it listens on (its port is in
    # services/registry.py), where it finds the gRPC APIs (host:port; None: this host, on the
    # service's port), the operator's base-map tiles (None: the grids alone) and the zone whose
    # days its figures count.
    console_http_host: str = _setting("127.0.0.1")
    grid_grpc_target: str | None = _setting("", _optional, documented="this host, on `GRIDBUS_GRID_GRPC_PORT`")
    incidents_grpc_target: str | None = _setting("", _optional,
                                                 documented="this host, on `GRIDBUS_INCIDENTS_GRPC_PORT`")
    dispatch_grpc_target: str | None = _setting("", _optional,
                                                documented="this host, on `GRIDBUS_DISPATCH_GRPC_PORT`")
    emergencies_grpc_target: str | None = _setting("", _optional,
                                                   documented="this host, on `GRIDBUS_EMERGENCIES_GRPC_PORT`")
    console_tile_url: str | None = _setting("", _tile_url, documented="none")
    # The grid gRPC server's processes: each holds its own index of the leaf grids and serves the
    # same port (SO_REUSEPORT), so Locate uses more than one core (one Python process uses one).
    grid_grpc_processes: int = _setting("1", _positive_int)
    console_time_zone: str = _setting("Asia/Shanghai", _time_zone)
    # The console's attachment store (officers' photos): a directory, or an S3-compatible bucket
    # when one is named (credentials the usual AWS way); the largest photo it takes, how long a
    # viewing link lives and the key that signs the directory's links (none: a random key per
    # process; set one when several console processes share the directory).
    attachment_dir: str = _setting("var/attachments")
    attachment_s3_bucket: str | None = _setting("", _optional, documented="none")
    attachment_s3_endpoint: str | None = _setting("", _optional, documented="AWS S3")
    attachment_s3_region: str | None = _setting("", _optional, documented="none")
    attachment_max_bytes: int = _setting(str(10 * 1024 * 1024), _positive_int)
    attachment_link_seconds: float = _setting("300", _positive_number)
    attachment_link_key: str | None = _setting("", _optional, documented="a random key per process")
    # Sensors: alarms from one device within this window of its case count on it (after the case
    # is decided, too); how often silent devices are looked for; the MQTT address devices are given.
    sensors_collapse_minutes: float = _setting("10", _positive_number)
    sensors_sweep_seconds: float = _setting("30", _positive_number)
    sensors_mqtt_url: str = _setting("mqtt://127.0.0.1:1884")
    # Each open WatchAlerts stream (one per signed-in officer's app, held by the console) keeps one
    # of the emergencies gRPC server's threads; the rest answer Accept, Decline and GetAlert.
    emergencies_grpc_workers: int = _setting("512", _positive_int)
    # Emergencies: officers alerted first within this radius, if their position is this fresh;
    # how long each stage waits for one to accept before it widens; how often that is looked at.
    emergencies_radius_m: float = _setting("1000", _positive_number)
    emergencies_position_max_age_seconds: float = _setting("600", _positive_number)
    emergencies_answer_seconds: float = _setting("60", _positive_number)
    emergencies_sweep_seconds: float = _setting("2", _positive_number)
    # TLS (shared/tls.py), PEM files. gRPC servers serve TLS with a certificate and key, and require
    # clients' certificates from GRIDBUS_GRPC_TLS_CLIENT_CA when it is set (mutual TLS); gRPC
    # clients dial TLS when GRIDBUS_GRPC_TLS_CA names the CA they trust (`system`: the system's
    # roots), with a certificate of their own for mutual TLS. AMQP is TLS when the URI is amqps://;
    # PostgreSQL's is the database URL's sslmode.
    grpc_tls_cert: str | None = _setting("", _optional, documented="none")
    grpc_tls_key: str | None = _setting("", _optional, documented="none")
    grpc_tls_client_ca: str | None = _setting("", _optional, documented="none")
    grpc_tls_ca: str | None = _setting("", _optional, documented="none")
    grpc_client_cert: str | None = _setting("", _optional, documented="none")
    grpc_client_key: str | None = _setting("", _optional, documented="none")
    amqp_ssl_ca: str | None = _setting("", _optional, documented="the system's roots")
    amqp_ssl_cert: str | None = _setting("", _optional, documented="none")
    amqp_ssl_key: str | None = _setting("", _optional, documented="none")
    # Production requires TLS on every link unless this names the links that go without it on
    # purpose (a service mesh that encrypts them, a broker on the same host): grpc, amqp, database.
    insecure_transport: frozenset[str] = _setting("", _transports, documented="none")
    # Observability (shared/observability.py): the port each process serves Prometheus metrics on
    # (none: its own default, services/registry.py; 0: a free one, logged), the OTLP/HTTP
    # collector traces go to (none: not exported), and a file spans are appended to as JSON lines
    # (tests, or a look without a collector).
    metrics_port: int | None = _setting("", lambda raw: None if raw == "" else _port_number(raw),
                                        documented="per process: 9400 + its place in services/registry.py")
    otlp_endpoint: str | None = _setting("", lambda raw: _http_url(raw) if raw else None, documented="none")
    trace_file: str | None = _setting("", _optional, documented="none")
    # Fault tests only: the process exits at the failpoint of this name (shared/failpoints.py).
    failpoint: str | None = _setting("", _optional, documented="none")

    @property
    def owner_database_url(self) -> str:
        """The URL migrations run with."""
        return self.migration_database_url or self.database_url


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


def settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings as the environment has them now (tests change it between calls)."""
    env = os.environ if env is None else env
    # Parsed once per distinct set of GRIDBUS_ variables: hot paths read settings per request.
    return _parsed(tuple(sorted((k, v) for k, v in env.items() if k.startswith(PREFIX))))


@functools.lru_cache(maxsize=16)
def _parsed(items: tuple[tuple[str, str], ...]) -> Settings:
    env = dict(items)
    values = {}
    for f in fields(Settings):
        name = env_name(f.name)
        try:
            values[f.name] = f.metadata["parse"](env.get(name, f.metadata["default"]))
        except ValueError as exc:
            raise RuntimeError(f"{name} {exc}") from None
    return Settings(**values)


def port(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    """A server's port from the environment variable `name`; 0 lets the system pick one."""
    env = os.environ if env is None else env
    raw = env.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be a port number, not {raw!r}")
    if not 0 <= value <= 65535:
        raise RuntimeError(f"{name} must be a port number (0 to 65535), not {value}")
    return value


def start(process: str, needs: Iterable[str] = (), env: Mapping[str, str] | None = None) -> Settings:
    """What every gridbus process calls before anything else (services/registry.py `start` with
    the process's own needs): its settings, or an exit naming each bad variable. With
    GRIDBUS_ENV=production, also `production_problems` with what every process needs and `needs`."""
    env = os.environ if env is None else env
    try:
        s = settings(env)
    except RuntimeError as exc:
        raise SystemExit(f"gridbus {process}: {exc}")
    if s.env == PRODUCTION:
        from shared.production import EVERY_PROCESS_NEEDS, production_problems  # it reads this module
        problems = production_problems(env, [*EVERY_PROCESS_NEEDS, *needs])
        if problems:
            raise SystemExit(f"gridbus {process}: refusing to start with {env_name('env')}={PRODUCTION}:\n  "
                             + "\n  ".join(problems))
    return s
