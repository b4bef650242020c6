"""Configuration from the environment, read in one place."""
from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "postgresql+psycopg://root@127.0.0.1:5432/gridbus"
# Only good for a laptop: the tests and the demo mint their own tokens with it.
INSECURE_DEV_TOKEN_KEY = "gridbus-dev-key-not-for-production-0123456789"
# Keys the credit registry's identity-number lookups; losing it makes them unfindable.
INSECURE_DEV_ID_KEY = "gridbus-dev-id-key-not-for-production-9876543210"

EVENTS_EXCHANGE = "gridbus.events"


@dataclass(frozen=True)
class Settings:
    amqp_uri: str
    database_url: str
    token_key: str
    grid_grpc_port: int
    incidents_grpc_port: int
    dispatch_grpc_port: int
    credit_grpc_port: int
    open311_http_port: int
    subscriptions_grpc_port: int
    credit_id_key: str
    log_level: str
    token_ttl_seconds: int
    # The dispatch console (services/console): where it listens, where it finds the gRPC APIs
    # (host:port; another host in a deployment), the operator's base-map tiles, its days' zone.
    console_http_host: str
    console_http_port: int
    grid_grpc_target: str
    incidents_grpc_target: str
    dispatch_grpc_target: str
    console_tile_url: str
    console_time_zone: str


MIN_TOKEN_KEY_BYTES = 32


def _key(env, name: str, default: str) -> str:
    value = env.get(name, default)
    if len(value.encode()) < MIN_TOKEN_KEY_BYTES:
        raise RuntimeError(f"{name} must be at least {MIN_TOKEN_KEY_BYTES} bytes")
    return value


def settings() -> Settings:
    env = os.environ
    token_key = _key(env, "GRIDBUS_TOKEN_KEY", INSECURE_DEV_TOKEN_KEY)
    return Settings(
        amqp_uri=env.get("GRIDBUS_AMQP_URI", DEFAULT_AMQP_URI),
        database_url=env.get("GRIDBUS_DATABASE_URL", DEFAULT_DATABASE_URL),
        token_key=token_key,
        grid_grpc_port=int(env.get("GRIDBUS_GRID_GRPC_PORT", "50051")),
        incidents_grpc_port=int(env.get("GRIDBUS_INCIDENTS_GRPC_PORT", "50052")),
        dispatch_grpc_port=int(env.get("GRIDBUS_DISPATCH_GRPC_PORT", "50053")),
        credit_grpc_port=int(env.get("GRIDBUS_CREDIT_GRPC_PORT", "50054")),
        open311_http_port=int(env.get("GRIDBUS_OPEN311_HTTP_PORT", "8311")),
        subscriptions_grpc_port=int(env.get("GRIDBUS_SUBSCRIPTIONS_GRPC_PORT", "50055")),
        credit_id_key=_key(env, "GRIDBUS_CREDIT_ID_KEY", INSECURE_DEV_ID_KEY),
        log_level=env.get("GRIDBUS_LOG_LEVEL", "INFO"),
        token_ttl_seconds=int(env.get("GRIDBUS_TOKEN_TTL_SECONDS", str(12 * 3600))),
        console_http_host=env.get("GRIDBUS_CONSOLE_HTTP_HOST", "127.0.0.1"),
        console_http_port=int(env.get("GRIDBUS_CONSOLE_HTTP_PORT", "8080")),
        grid_grpc_target=env.get("GRIDBUS_GRID_GRPC_TARGET") or f"127.0.0.1:{env.get('GRIDBUS_GRID_GRPC_PORT', '50051')}",
        incidents_grpc_target=(env.get("GRIDBUS_INCIDENTS_GRPC_TARGET")
                               or f"127.0.0.1:{env.get('GRIDBUS_INCIDENTS_GRPC_PORT', '50052')}"),
        dispatch_grpc_target=(env.get("GRIDBUS_DISPATCH_GRPC_TARGET")
                              or f"127.0.0.1:{env.get('GRIDBUS_DISPATCH_GRPC_PORT', '50053')}"),
        console_tile_url=env.get("GRIDBUS_CONSOLE_TILE_URL", ""),
        console_time_zone=env.get("GRIDBUS_CONSOLE_TIME_ZONE", "Asia/Shanghai"),
    )


def nameko_config(s: Settings | None = None) -> dict:
    s = s or settings()
    return {"AMQP_URI": s.amqp_uri, "serializer": "json"}
