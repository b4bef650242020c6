"""Configuration from the environment, read in one place."""
from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "postgresql+psycopg://root@127.0.0.1:5432/gridbus"
# Only good for a laptop: the tests and the demo mint their own tokens with it.
INSECURE_DEV_TOKEN_KEY = "gridbus-dev-key-not-for-production-0123456789"

EVENTS_EXCHANGE = "gridbus.events"


@dataclass(frozen=True)
class Settings:
    amqp_uri: str
    database_url: str
    token_key: str
    grid_grpc_port: int
    log_level: str
    token_ttl_seconds: int


MIN_TOKEN_KEY_BYTES = 32


def settings() -> Settings:
    env = os.environ
    token_key = env.get("GRIDBUS_TOKEN_KEY", INSECURE_DEV_TOKEN_KEY)
    if len(token_key.encode()) < MIN_TOKEN_KEY_BYTES:
        raise RuntimeError(f"GRIDBUS_TOKEN_KEY must be at least {MIN_TOKEN_KEY_BYTES} bytes")
    return Settings(
        amqp_uri=env.get("GRIDBUS_AMQP_URI", DEFAULT_AMQP_URI),
        database_url=env.get("GRIDBUS_DATABASE_URL", DEFAULT_DATABASE_URL),
        token_key=token_key,
        grid_grpc_port=int(env.get("GRIDBUS_GRID_GRPC_PORT", "50051")),
        log_level=env.get("GRIDBUS_LOG_LEVEL", "INFO"),
        token_ttl_seconds=int(env.get("GRIDBUS_TOKEN_TTL_SECONDS", str(12 * 3600))),
    )


def nameko_config(s: Settings | None = None) -> dict:
    s = s or settings()
    return {"AMQP_URI": s.amqp_uri, "serializer": "json"}
