"""Fixtures on the real servers: a fresh PostGIS database and a fresh RabbitMQ vhost per run."""
from __future__ import annotations

import os
import subprocess
import uuid

import psycopg
import pytest

from shared.config import INSECURE_DEV_TOKEN_KEY

ADMIN_DSN = os.environ.get("GRIDBUS_TEST_ADMIN_DSN", "postgresql://root@127.0.0.1:5432/postgres")
AMQP_HOST = os.environ.get("GRIDBUS_TEST_AMQP_HOST", "guest:guest@127.0.0.1:5672")

RUN_ID = uuid.uuid4().hex[:10]


def _admin(sql: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session", autouse=True)
def environment(tmp_path_factory):
    """Points every gridbus process of this test run at its own database and vhost."""
    db = f"gridbus_test_{RUN_ID}"
    vhost = f"gridbus-test-{RUN_ID}"
    _admin(f"CREATE DATABASE {db}")
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    env = {
        "GRIDBUS_DATABASE_URL": f"postgresql+psycopg://root@127.0.0.1:5432/{db}",
        "GRIDBUS_AMQP_URI": f"amqp://{AMQP_HOST}/{vhost}",
        "GRIDBUS_TOKEN_KEY": INSECURE_DEV_TOKEN_KEY,
        "GRIDBUS_LOG_LEVEL": "INFO",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from shared.migrations import upgrade
    upgrade()
    yield {**os.environ, **env, "LOG_DIR": str(tmp_path_factory.mktemp("logs"))}
    from shared.db import dispose_engines
    dispose_engines()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    _rabbitmqctl("delete_vhost", vhost)
