"""Two kinds of tests (tests/README.md has more):

- unit tests check pure code (domain rules, token checks, calendars, envelopes, manifests).
  They request no server fixture, and `make unit` runs them with the database's and the
  broker's addresses pointing at closed ports, so one that reaches for a server fails there;
- integration tests request `environment` (a fresh PostGIS database and RabbitMQ vhost for this
  run), or a fixture built on it (`city`, `stub`, `incidents_nameko`, ...).

pytest_collection_modifyitems marks each test `unit` or `integration` by what it requests.
Below: the fixtures on the real servers, the demo city, the category catalogue, and the
incidents service's processes."""
from __future__ import annotations

import os
import subprocess
import uuid

import psycopg
import pytest

import grpc

from demo.city import CityPlan, build
from shared.auth import SERVICE, Principal
from shared.config import INSECURE_DEV_TOKEN_KEY
from tests.support import service_process

ADMIN_DSN = os.environ.get("GRIDBUS_TEST_ADMIN_DSN", "postgresql://root@127.0.0.1:5432/postgres")
AMQP_HOST = os.environ.get("GRIDBUS_TEST_AMQP_HOST", "guest:guest@127.0.0.1:5672")
MANAGEMENT_URL = os.environ.get("GRIDBUS_TEST_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")

RUN_ID = uuid.uuid4().hex[:10]


def _admin(sql: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


# Roles are cluster-wide: this run's are named after it, and dropped with its database.
OWNER_ROLE = f"gridbus_owner_{RUN_ID}"
RUNTIME_ROLE = f"gridbus_app_{RUN_ID}"
# So are broker users: this run's services connect as t<RUN_ID>-<service> (shared/broker_users.py).
BROKER_USER_PREFIX = f"t{RUN_ID}-"


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker("integration" if "environment" in item.fixturenames else "unit")


@pytest.fixture(scope="session")
def environment(tmp_path_factory):
    """Points every gridbus process of this test run at its own database and vhost. The database
    belongs to an owner role that migrations run as; the services (and the tests, in process)
    run as a runtime role with only what the migrations grant it (docs/security.md). Trust
    authentication here: no passwords. On the broker, each service's processes connect as its
    own user (GRIDBUS_AMQP_URI_<SERVICE>, which tests.support.service_process gives them as
    GRIDBUS_AMQP_URI); the tests themselves as the administrator."""
    db = f"gridbus_test_{RUN_ID}"
    vhost = f"gridbus-test-{RUN_ID}"
    env = {
        "GRIDBUS_DATABASE_URL": f"postgresql+psycopg://{RUNTIME_ROLE}@127.0.0.1:5432/{db}",
        "GRIDBUS_MIGRATION_DATABASE_URL": f"postgresql+psycopg://{OWNER_ROLE}@127.0.0.1:5432/{db}",
        "GRIDBUS_AMQP_URI": f"amqp://{AMQP_HOST}/{vhost}",
        "GRIDBUS_TOKEN_KEY": INSECURE_DEV_TOKEN_KEY,
        "GRIDBUS_LOG_LEVEL": "INFO",
        "GRIDBUS_METRICS_PORT": "0",  # each process a free port: test runs share the host
        "GRIDBUS_BROKER_MANAGEMENT_URL": MANAGEMENT_URL,
        "GRIDBUS_BROKER_USER_PREFIX": BROKER_USER_PREFIX,
    }
    saved = {k: os.environ.get(k) for k in env}
    try:
        _admin(f"CREATE ROLE {OWNER_ROLE} LOGIN")
        _admin(f"CREATE ROLE {RUNTIME_ROLE} LOGIN")
        _admin(f"CREATE DATABASE {db} OWNER {OWNER_ROLE}")
        with psycopg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{db}", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")  # a superuser's, as in production
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        from shared import broker_users
        env.update(broker_users.provision(MANAGEMENT_URL, env["GRIDBUS_AMQP_URI"], prefix=BROKER_USER_PREFIX, env={}))
        os.environ.update(env)
        from services.registry import migrate
        migrate()
        log_dir = tmp_path_factory.mktemp("logs")
        # Every process appends its finished spans here (shared/observability.py); tests follow traces in it.
        yield {**os.environ, **env, "LOG_DIR": str(log_dir), "GRIDBUS_TRACE_FILE": str(log_dir / "spans.jsonl")}
    finally:
        from shared.db import dispose_engines
        dispose_engines()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        _admin(f"DROP ROLE IF EXISTS {RUNTIME_ROLE}")
        _admin(f"DROP ROLE IF EXISTS {OWNER_ROLE}")
        _rabbitmqctl("delete_vhost", vhost)
        from shared import broker_users
        broker_users.remove(MANAGEMENT_URL, BROKER_USER_PREFIX)


SYSTEM = Principal("tests", SERVICE, ())
# 2 districts x 2 streets x 2 communities x 4 grids = 32 grids.
CITY = CityPlan()


@pytest.fixture(scope="session")
def city(environment):
    """The demo city's grids, imported once per run."""
    from services.grid import operations as grid_ops
    grid_ops.import_units(SYSTEM, build(CITY))
    return CITY


@pytest.fixture(scope="session")
def categories(environment):
    """The default incident category catalogue, loaded once per run."""
    import yaml

    from services.incidents import operations as incident_ops
    from services.incidents.cli import DEFAULT_CATEGORIES
    with open(DEFAULT_CATEGORIES, encoding="utf-8") as f:
        incident_ops.load_categories(SYSTEM, yaml.safe_load(f))


# The demo's departments, and the codes tests dispatch to by hand: a person may send a case only
# to a known, active department serving its grid.
TEST_DEPARTMENTS = ("CG-01", "SW-02", "SW-03", "SW-09", "HB-ENV")


@pytest.fixture(scope="session")
def departments(environment):
    import yaml

    from services.dispatch import operations as dispatch_ops
    from services.dispatch.cli import DEFAULT_CONFIG
    with open(DEFAULT_CONFIG, encoding="utf-8") as f:
        for d in yaml.safe_load(f)["departments"]:
            dispatch_ops.upsert_department(SYSTEM, d["code"], d["name"], d["serves"])
    for code in TEST_DEPARTMENTS:
        dispatch_ops.upsert_department(SYSTEM, code, f"test department {code}", [CITY.city_code])


# --- the incidents service's processes, shared by every test package that needs them ------

@pytest.fixture(scope="session")
def incidents_server(environment, city, categories, departments):
    with service_process(environment, "incidents", "grpc") as proc:
        yield proc.port


@pytest.fixture(scope="session")
def stub(incidents_server):
    from gridbus.incidents.v1 import incidents_pb2_grpc
    with grpc.insecure_channel(f"127.0.0.1:{incidents_server}") as channel:
        yield incidents_pb2_grpc.IncidentServiceStub(channel)


@pytest.fixture(scope="session")
def incidents_nameko(environment, city, categories, departments):
    """The nameko service: relays the outbox and applies dispatch's events."""
    with service_process(environment, "incidents", "nameko") as proc:
        yield proc
