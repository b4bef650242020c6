"""Production mode (GRIDBUS_ENV=production): every process refuses to start, naming the variable,
on a missing, short, development or placeholder key or default credentials; the deployment files'
placeholders are exactly what it refuses; a real configuration starts."""
from __future__ import annotations

import base64
import secrets
import subprocess
import sys

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services import registry
from shared import config
from shared import production as production_rules
from shared.config import INSECURE_DEV_CHECKPOINT_KEY, INSECURE_DEV_ID_KEY, INSECURE_DEV_TOKEN_KEY, PLACEHOLDER
from shared.production import production_problems
from tests.support import ROOT


def ed25519_pair(key_id: str) -> tuple[str, str]:
    """A fresh `key-id:base64` private seed and its public key."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"{key_id}:{base64.b64encode(seed).decode()}", f"{key_id}:{base64.b64encode(public).decode()}"


VERIFY_FULL = "?sslmode=verify-full&sslrootcert=/tls/db-ca.crt"


def good_env(amqp: str = "amqps://gridbus:{pw}@127.0.0.1:1/", db: str = "postgresql+psycopg://gridbus_app:{pw}@127.0.0.1:1/x"
             + VERIFY_FULL) -> dict[str, str]:
    """A production configuration with real keys and TLS on every link (servers on closed ports
    unless given)."""
    private, public = ed25519_pair("k2026")
    token_key, _ = ed25519_pair("t2026")
    return {"GRIDBUS_ENV": "production",
            "GRIDBUS_AMQP_URI": amqp.format(pw=secrets.token_urlsafe(16)),
            "GRIDBUS_DATABASE_URL": db.format(pw=secrets.token_urlsafe(16)),
            "GRIDBUS_TOKEN_KEY": token_key, "GRIDBUS_CREDIT_ID_KEY": secrets.token_urlsafe(32),
            "GRIDBUS_CREDIT_CHECKPOINT_KEY": private, "GRIDBUS_CREDIT_CHECKPOINT_VERIFY_KEYS": public,
            "GRIDBUS_GRPC_TLS_CERT": "/tls/server.crt", "GRIDBUS_GRPC_TLS_KEY": "/tls/server.key",
            "GRIDBUS_GRPC_TLS_CA": "/tls/ca.crt"}


EVERYTHING = [f for _, p in registry.processes() for f in p.needs]


def test_a_real_configuration_has_no_problems():
    assert production_problems(good_env(), [*production_rules.EVERY_PROCESS_NEEDS, *EVERYTHING]) == []


_DEV_TOKEN_PUBLIC = next(v for v in production_rules._dev_values()[0]
                         if v.startswith("dev-token:") and v != INSECURE_DEV_TOKEN_KEY)
_DEV_PUBLIC = next(v for v in production_rules._dev_values()[0] if v.startswith("dev-checkpoint:") and v != INSECURE_DEV_CHECKPOINT_KEY)


@pytest.mark.parametrize("name, value, words", [
    ("GRIDBUS_TOKEN_KEY", None, "GRIDBUS_TOKEN_KEY is not set"),
    ("GRIDBUS_AMQP_URI", None, "GRIDBUS_AMQP_URI is not set"),
    ("GRIDBUS_DATABASE_URL", None, "GRIDBUS_DATABASE_URL is not set"),
    ("GRIDBUS_CREDIT_ID_KEY", None, "GRIDBUS_CREDIT_ID_KEY is not set"),
    ("GRIDBUS_CREDIT_CHECKPOINT_KEY", None, "GRIDBUS_CREDIT_CHECKPOINT_KEY is not set"),
    ("GRIDBUS_CREDIT_CHECKPOINT_VERIFY_KEYS", None, "GRIDBUS_CREDIT_CHECKPOINT_VERIFY_KEYS is not set"),
    ("GRIDBUS_TOKEN_KEY", INSECURE_DEV_TOKEN_KEY, "GRIDBUS_TOKEN_KEY is one of the repository's development keys"),
    ("GRIDBUS_CREDIT_ID_KEY", INSECURE_DEV_ID_KEY, "GRIDBUS_CREDIT_ID_KEY is one of the repository's development"),
    ("GRIDBUS_CREDIT_CHECKPOINT_KEY", INSECURE_DEV_CHECKPOINT_KEY, "GRIDBUS_CREDIT_CHECKPOINT_KEY is one of the"),
    # The development seed under another key id, and the development public key among real ones.
    ("GRIDBUS_CREDIT_CHECKPOINT_KEY", "k9:" + INSECURE_DEV_CHECKPOINT_KEY.partition(":")[2],
     "GRIDBUS_CREDIT_CHECKPOINT_KEY is one of the"),
    ("GRIDBUS_CREDIT_CHECKPOINT_VERIFY_KEYS", ed25519_pair("k1")[1] + "," + _DEV_PUBLIC,
     "GRIDBUS_CREDIT_CHECKPOINT_VERIFY_KEYS is one of the"),
    ("GRIDBUS_CREDIT_CHECKPOINT_VERIFY_KEYS", "k1:" + base64.b64encode(bytes(32)).decode(), "zero bytes"),
    ("GRIDBUS_TOKEN_KEY", "t9:" + INSECURE_DEV_TOKEN_KEY.partition(":")[2], "GRIDBUS_TOKEN_KEY is one of the"),
    ("GRIDBUS_TOKEN_VERIFY_KEYS", ed25519_pair("t1")[1] + "," + _DEV_TOKEN_PUBLIC, "GRIDBUS_TOKEN_VERIFY_KEYS is one of the"),
    ("GRIDBUS_TOKEN_KEY", f"{PLACEHOLDER}:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "GRIDBUS_TOKEN_KEY is still the deployment"),
    ("GRIDBUS_AMQP_URI", "amqps://guest:guest@rabbitmq:5671/", "GRIDBUS_AMQP_URI uses the default account (guest)"),
    ("GRIDBUS_AMQP_URI", "amqps://gridbus:guest@rabbitmq:5671/", "GRIDBUS_AMQP_URI uses the default account"),
    ("GRIDBUS_AMQP_URI", "amqps://gridbus@rabbitmq:5671/", "GRIDBUS_AMQP_URI has no password"),
    ("GRIDBUS_AMQP_URI", f"amqps://gridbus:{PLACEHOLDER}@rabbitmq:5671/", "GRIDBUS_AMQP_URI still has the deployment"),
    ("GRIDBUS_DATABASE_URL", config.DEFAULT_DATABASE_URL + VERIFY_FULL, "GRIDBUS_DATABASE_URL has no password"),
    ("GRIDBUS_DATABASE_URL", "postgresql+psycopg://guest:guest@db/gridbus" + VERIFY_FULL,
     "GRIDBUS_DATABASE_URL uses the default"),
    ("GRIDBUS_MIGRATION_DATABASE_URL", f"postgresql+psycopg://owner:{PLACEHOLDER}@db/gridbus" + VERIFY_FULL,
     "GRIDBUS_MIGRATION_DATABASE_URL still has the deployment"),
    # TLS on every link: the broker, the database (its certificate checked), gRPC both ways.
    ("GRIDBUS_AMQP_URI", "amqp://gridbus:s3cret-s3cret@rabbitmq:5672/", "GRIDBUS_AMQP_URI is not amqps://"),
    ("GRIDBUS_DATABASE_URL", "postgresql+psycopg://gridbus_app:s3cret-s3cret@db/gridbus",
     "GRIDBUS_DATABASE_URL has sslmode=(none): production needs sslmode=verify-full"),
    ("GRIDBUS_DATABASE_URL", "postgresql+psycopg://gridbus_app:s3cret-s3cret@db/gridbus?sslmode=require",
     "GRIDBUS_DATABASE_URL has sslmode=require"),
    ("GRIDBUS_MIGRATION_DATABASE_URL", "postgresql+psycopg://owner:s3cret-s3cret@db/gridbus?sslmode=prefer",
     "GRIDBUS_MIGRATION_DATABASE_URL has sslmode=prefer"),
    ("GRIDBUS_GRPC_TLS_CERT", None, "GRIDBUS_GRPC_TLS_CERT is not set: production serves and dials gRPC over TLS"),
    ("GRIDBUS_GRPC_TLS_KEY", None, "GRIDBUS_GRPC_TLS_KEY is not set"),
    ("GRIDBUS_GRPC_TLS_CA", None, "GRIDBUS_GRPC_TLS_CA is not set"),
    ("GRIDBUS_INSECURE_TRANSPORT", "grpc,telnet", "GRIDBUS_INSECURE_TRANSPORT must name links from grpc, amqp, database"),
    ("GRIDBUS_OPEN311_API_KEYS", "k-0123456789abcdef=city-app,short=other",
     "GRIDBUS_OPEN311_API_KEYS has a key shorter than 16"),
])
def test_each_problem_names_its_variable(name, value, words):
    env = good_env()
    if value is None:
        del env[name]
    else:
        env[name] = value
    problems = production_problems(env, [*production_rules.EVERY_PROCESS_NEEDS, *EVERYTHING])
    assert len(problems) == 1 and words in problems[0], problems


def test_a_key_a_process_does_not_need_may_be_unset_but_never_a_development_one():
    env = good_env()
    del env["GRIDBUS_CREDIT_ID_KEY"]
    assert production_problems(env, production_rules.EVERY_PROCESS_NEEDS) == []
    env["GRIDBUS_CREDIT_ID_KEY"] = INSECURE_DEV_ID_KEY
    assert production_problems(env, production_rules.EVERY_PROCESS_NEEDS) != []


def test_a_link_without_tls_is_allowed_only_when_named_as_such():
    """GRIDBUS_INSECURE_TRANSPORT: a service mesh encrypts the pods' traffic, say; each link is named."""
    env = {**good_env(), "GRIDBUS_AMQP_URI": "amqp://gridbus:s3cret-s3cret@rabbitmq:5672/",
           "GRIDBUS_DATABASE_URL": "postgresql+psycopg://gridbus_app:s3cret-s3cret@db/gridbus"}
    for name in ("GRIDBUS_GRPC_TLS_CERT", "GRIDBUS_GRPC_TLS_KEY", "GRIDBUS_GRPC_TLS_CA"):
        del env[name]
    needs = [*production_rules.EVERY_PROCESS_NEEDS, *EVERYTHING]
    assert len(production_problems(env, needs)) == 5
    assert len(production_problems({**env, "GRIDBUS_INSECURE_TRANSPORT": "grpc"}, needs)) == 2
    assert production_problems({**env, "GRIDBUS_INSECURE_TRANSPORT": "grpc,amqp,database"}, needs) == []


def test_grpc_servers_need_their_certificate_and_the_console_the_ca():
    needs = {p.name: set(p.needs) for _, p in registry.processes()}
    assert all({"grpc_tls_cert", "grpc_tls_key"} <= needs[p.name] for _, p in registry.processes()
               if p.kind == registry.GRPC)
    assert "grpc_tls_ca" in needs["console-http"]


def test_development_mode_uses_the_development_keys():
    assert config.start("test", EVERYTHING, {}).token_key == INSECURE_DEV_TOKEN_KEY


def test_a_database_url_may_use_a_client_certificate_instead_of_a_password():
    env = {**good_env(), "GRIDBUS_DATABASE_URL": "postgresql+psycopg://gridbus_app@db/gridbus?sslmode=verify-full"
                                                 "&sslcert=/tls/db.crt&sslkey=/tls/db.key"}
    assert production_problems(env, production_rules.EVERY_PROCESS_NEEDS) == []


# --- the deployment files' placeholders ---------------------------------------------------

def _k8s_settings() -> dict[str, str]:
    """Every GRIDBUS_ value in k8s/'s ConfigMaps and Secrets."""
    out = {}
    for path in sorted((ROOT / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in ("ConfigMap", "Secret"):
                for key, value in {**(doc.get("data") or {}), **(doc.get("stringData") or {})}.items():
                    if key.startswith("GRIDBUS_"):
                        out[key] = str(value)
    return out


def test_the_k8s_placeholders_are_refused_and_nothing_else_is():
    k8s = _k8s_settings()
    placeholders = {k for k, v in k8s.items() if PLACEHOLDER in v}
    # Every secret the manifests carry is a placeholder, and every one of them is one.
    guarded = {config.env_name(f.name) for f in config.fields(config.Settings) if f.metadata["guards"]}
    assert placeholders == {k for k in guarded & k8s.keys() if k8s[k]}, "a secret in k8s/ is not a placeholder"
    refused = production_problems(k8s, [*production_rules.EVERY_PROCESS_NEEDS, *EVERYTHING])
    assert sorted(p.split()[0] for p in refused) == sorted(placeholders)
    assert all("placeholder" in p for p in refused), refused
    # With real values in their places, the same configuration passes.
    real = {**k8s, **{k: v for k, v in good_env().items() if k in placeholders},
            "GRIDBUS_MIGRATION_DATABASE_URL": f"postgresql+psycopg://gridbus_owner:{secrets.token_urlsafe(16)}@db/gridbus"
                                              + VERIFY_FULL,
            "GRIDBUS_BROKER_MANAGEMENT_URL": f"http://gridbus:{secrets.token_urlsafe(16)}@rabbitmq:15672"}
    assert production_problems(real, [*production_rules.EVERY_PROCESS_NEEDS, *EVERYTHING]) == []


def test_compose_carries_no_secret_but_requires_each():
    """docker-compose.yml takes every secret from the operator's environment (${VAR:?...}), so it
    has no placeholder to forget, and it runs in production mode."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    guarded = {config.env_name(f.name) for f in config.fields(config.Settings) if f.metadata["guards"] == config.KEY}
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        if "GRIDBUS_TOKEN_KEY" in env:
            assert env.get("GRIDBUS_ENV") == "production", name
            for key in guarded & env.keys():
                assert env[key] in ("", None) or ":?" in env[key] or env[key].startswith("${"), (name, key)


# --- real processes -----------------------------------------------------------------------

def _argv(process: registry.Process) -> list[str]:
    from demo.services import processes
    return dict(processes()[process.name.rsplit("-", 1)[0]])[process.name]


# Each process is started with one bad setting; together they try every kind of problem.
BAD = [("GRIDBUS_TOKEN_KEY", INSECURE_DEV_TOKEN_KEY, "development key"),
       ("GRIDBUS_AMQP_URI", "amqp://guest:guest@127.0.0.1:1/", "default account (guest)"),
       ("GRIDBUS_DATABASE_URL", f"postgresql+psycopg://gridbus_app:{PLACEHOLDER}@127.0.0.1:1/x", "placeholder"),
       ("GRIDBUS_TOKEN_KEY", "short", "must be key-id:base64"),
       ("GRIDBUS_TOKEN_KEY", None, "is not set")]
CREDIT_BAD = {"credit-nameko": ("GRIDBUS_CREDIT_CHECKPOINT_KEY", INSECURE_DEV_CHECKPOINT_KEY, "development key"),
              "credit-grpc": ("GRIDBUS_CREDIT_CHECKPOINT_VERIFY_KEYS", None, "is not set"),
              "credit-http": ("GRIDBUS_CREDIT_ID_KEY", f"{PLACEHOLDER}-with-32-or-more-random-bytes", "placeholder")}
# ...and some without TLS on one link.
TLS_BAD = {"grid-grpc": ("GRIDBUS_GRPC_TLS_KEY", None, "is not set: production serves and dials gRPC over TLS"),
           "console-http": ("GRIDBUS_GRPC_TLS_CA", None, "is not set: production serves and dials gRPC over TLS"),
           "incidents-nameko": ("GRIDBUS_AMQP_URI", "amqp://gridbus:s3cret-s3cret@127.0.0.1:1/", "is not amqps://"),
           "dispatch-nameko": ("GRIDBUS_DATABASE_URL", "postgresql+psycopg://app:s3cret-s3cret@127.0.0.1:1/x?sslmode=require",
                               "has sslmode=require")}
CASES = [(p.name, _argv(p), {**CREDIT_BAD, **TLS_BAD}.get(p.name, BAD[i % len(BAD)]))
         for i, (_, p) in enumerate(registry.processes())]
CASES.append(("gridbus relay", [sys.executable, "-m", "services.cli", "relay", "grid"],
              ("GRIDBUS_AMQP_URI", "amqp://gridbus@127.0.0.1:1/", "no password")))


@pytest.fixture(scope="module")
def refusals():
    """Every process started at once, each with its bad setting; their exit codes and output."""
    import os
    started = {}
    for name, argv, (var, value, _) in CASES:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDBUS_")}
        env.update(good_env(), GRIDBUS_GRID_GRPC_PORT="0")
        if value is None:
            env.pop(var)
        else:
            env[var] = value
        started[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
    out = {}
    try:
        for name, proc in started.items():
            _, err = proc.communicate(timeout=120)
            out[name] = (proc.returncode, err)
    finally:
        for proc in started.values():
            if proc.poll() is None:
                proc.kill()
    return out


def test_every_registry_process_is_tried():
    assert {name for name, _, _ in CASES} >= {p.name for _, p in registry.processes()}


@pytest.mark.parametrize("name, argv, bad", CASES, ids=[c[0] for c in CASES])
def test_every_process_refuses_to_start(refusals, name, argv, bad):
    var, _, words = bad
    code, err = refusals[name]
    assert code != 0, err
    last = err.strip().splitlines()
    assert any(var in line and words in line for line in last), err[-2000:]


# --- a real production configuration starts -----------------------------------------------

@pytest.fixture(scope="module")
def production(environment, tmp_path_factory):
    """A database, a vhost and each service's broker user with passwords of their own (so nothing
    the production processes do meets the other tests' keys), and the settings to reach them, over
    TLS on every link: AMQPS (a listener this run adds to the broker), PostgreSQL with
    sslmode=verify-full, gRPC with mutual TLS, with certificates made here."""
    from contextlib import ExitStack

    import psycopg

    from shared import broker_users
    from shared.levels import Call, Management
    from shared.pki import CA
    from tests.conftest import ADMIN_DSN, MANAGEMENT_URL, RUN_ID, RUNTIME_ROLE, _admin
    from tests.tls_support import amqps_listener, postgres_ca
    tls_dir = tmp_path_factory.mktemp("production-tls")
    ca = CA.create("production test CA")
    (tls_dir / "ca.crt").write_bytes(ca.cert_pem)
    # The gRPC server's certificate serves its health check as a client too (mutual TLS).
    ca.issue("credit-grpc", ["127.0.0.1"], client=True).write(tls_dir, "server")
    ca.issue("console", server=False, client=True).write(tls_dir, "client")
    stack = ExitStack()
    db, vhost, prefix, role = (f"gridbus_prod_{RUN_ID}", f"gridbus-prod-{RUN_ID}", f"p{RUN_ID}-",
                               f"gridbus_prod_app_{RUN_ID}")
    password = "p" + secrets.token_urlsafe(16)
    try:
        _admin(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        _admin(f"CREATE DATABASE {db} OWNER {RUNTIME_ROLE.replace('_app_', '_owner_')}")
        with psycopg.connect(ADMIN_DSN.rsplit("/", 1)[0] + f"/{db}", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        with Management(MANAGEMENT_URL) as api:
            api.apply([Call("PUT", f"/api/vhosts/{vhost}", {}),
                       Call("PUT", f"/api/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})])
        owner = environment["GRIDBUS_MIGRATION_DATABASE_URL"].rsplit("/", 1)[0] + f"/{db}"
        runtime = (f"postgresql+psycopg://{role}:{password}@127.0.0.1:5432/{db}"
                   f"?sslmode=verify-full&sslrootcert={postgres_ca(ADMIN_DSN)}")
        registry.migrate(owner, runtime)
        port = stack.enter_context(amqps_listener(ca, ca.issue("rabbitmq", ["127.0.0.1"]), require_client_cert=False))
        # Each service's own broker user in this vhost, as `gridbus broker users` makes them.
        uris = broker_users.provision(MANAGEMENT_URL, f"amqps://guest:guest@127.0.0.1:{port}/{vhost}", prefix=prefix,
                                      env={})
        env = good_env(db=runtime)
        env.update(uris)
        env.update({"GRIDBUS_AMQP_URI": uris[broker_users.env_name("console")],
                    "GRIDBUS_BROKER_USER_PREFIX": prefix,
                    "GRIDBUS_AMQP_SSL_CA": str(tls_dir / "ca.crt"),
                    "GRIDBUS_GRPC_TLS_CERT": str(tls_dir / "server.crt"),
                    "GRIDBUS_GRPC_TLS_KEY": str(tls_dir / "server.key"),
                    "GRIDBUS_GRPC_TLS_CLIENT_CA": str(tls_dir / "ca.crt"),
                    "GRIDBUS_GRPC_TLS_CA": str(tls_dir / "ca.crt"),
                    "GRIDBUS_GRPC_CLIENT_CERT": str(tls_dir / "client.crt"),
                    "GRIDBUS_GRPC_CLIENT_KEY": str(tls_dir / "client.key")})
        # Only migrations get the owner's URL, only operators' commands the broker administrator's.
        yield {**{k: v for k, v in environment.items()
                  if k not in ("GRIDBUS_MIGRATION_DATABASE_URL", "GRIDBUS_BROKER_MANAGEMENT_URL")}, **env}
    finally:
        stack.close()
        from shared.db import dispose_engines
        dispose_engines()
        _admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        _admin(f"DROP ROLE IF EXISTS {role}")
        broker_users.remove(MANAGEMENT_URL, prefix)
        with Management(MANAGEMENT_URL) as api:
            api.apply([Call("DELETE", f"/api/vhosts/{vhost}")])


def test_a_real_production_configuration_starts(production):
    """One process of each kind (credit's, which need the most keys, and the console) serves, with
    TLS on every link (their health checks dial as they do: tests/support.py)."""
    from tests.support import running, service_process
    procs = [service_process(production, "credit", kind, name=f"production-credit-{kind}")
             for kind in (registry.NAMEKO, registry.GRPC, registry.HTTP)]
    procs.append(service_process(production, "console", registry.HTTP, name="production-console-http"))
    with running(*procs):
        for proc in procs:
            assert proc.popen.poll() is None and "refusing" not in proc.log()
