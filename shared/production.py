"""Production mode's rules (shared/config.py `start` applies them with GRIDBUS_ENV=production): which
settings every process needs, and what makes a key or a server URL unfit for production."""
from __future__ import annotations

import base64
from dataclasses import fields
from typing import Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from shared import config
from shared.config import (CREDENTIALS, DEFAULT_BROKER_USER, KEY, MIN_API_KEY_CHARACTERS, PLACEHOLDER, Settings,
                           _ed25519_key, _transports, env_name)

# What every gridbus process needs set in production, whatever it does; services/registry.py adds
# each process's own keys.
EVERY_PROCESS_NEEDS = ("amqp_uri", "database_url", "token_key")
# Needs that are TLS, by the link they secure: GRIDBUS_INSECURE_TRANSPORT naming the link waives them.
TLS_NEEDS = {"grpc_tls_cert": "grpc", "grpc_tls_key": "grpc", "grpc_tls_ca": "grpc"}
# libpq's modes that check the server's certificate: `require` encrypts but takes anyone's.
VERIFYING_SSLMODES = ("verify-full", "verify-ca")


def _dev_values() -> tuple[set[str], set[str]]:
    """The repository's development values (every INSECURE_DEV_* above, and the `key-id:base64`
    public half of each Ed25519 one), and their key material alone (the base64 after the key id),
    so a development key under another key id is caught too."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    values = {v for k, v in vars(config).items() if k.startswith("INSECURE_DEV_") and isinstance(v, str)}
    material = set()
    for value in list(values):
        try:
            key_id, seed = _ed25519_key(value)
        except ValueError:
            continue
        public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        values.add(f"{key_id}:{base64.b64encode(public).decode()}")
        material |= {value.partition(":")[2], base64.b64encode(public).decode()}
    return values, material


def _key_problem(name: str, raw: str, dev: set[str], material: set[str]) -> str | None:
    for item in (i.strip() for i in raw.split(",")):
        if PLACEHOLDER in item:
            return f"{name} is still the deployment files' placeholder ({PLACEHOLDER}): set a real key"
        key = item
        if name == env_name("open311_api_keys"):
            key = item.partition("=")[0].strip()
            if len(key) < MIN_API_KEY_CHARACTERS:
                return (f"{name} has a key shorter than {MIN_API_KEY_CHARACTERS} characters "
                        "(ignored outside production): lengthen or remove it")
        if key in dev or key.partition(":")[2] in material:
            return f"{name} is one of the repository's development keys (shared/config.py): set a key of your own"
        if key.partition(":")[2] == base64.b64encode(bytes(32)).decode():
            return f"{name} is a key of zero bytes, a placeholder: set a real key"
    return None


def _credentials_problem(name: str, raw: str) -> str | None:
    from urllib.parse import unquote
    parts = urlsplit(raw)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if PLACEHOLDER in raw:
        return f"{name} still has the deployment files' placeholder ({PLACEHOLDER}): set the real credentials"
    if DEFAULT_BROKER_USER in (user, password):
        return f"{name} uses the default account ({DEFAULT_BROKER_USER}): give gridbus a user of its own"
    if not password and "sslcert=" not in parts.query:
        return f"{name} has no password (nor a client certificate, sslcert=): give its user a password"
    return None


def _transport_problems(env: Mapping[str, str], insecure: frozenset[str]) -> list[str]:
    """The broker's and the database's URLs without TLS, unless their link is waived."""
    waive = f"or name it in {env_name('insecure_transport')} when something else encrypts it"
    problems = []
    amqp = env.get(env_name("amqp_uri"), "")
    if amqp and "amqp" not in insecure and urlsplit(amqp).scheme != "amqps":
        problems.append(f"{env_name('amqp_uri')} is not amqps://: production reaches the broker over TLS ({waive}: amqp)")
    for field in ("database_url", "migration_database_url"):
        url = env.get(env_name(field), "")
        mode = parse_qs(urlsplit(url).query).get("sslmode", [""])[-1]
        if url and "database" not in insecure and mode not in VERIFYING_SSLMODES:
            problems.append(f"{env_name(field)} has sslmode={mode or '(none)'}: production needs "
                            f"sslmode=verify-full (or verify-ca) and sslrootcert, so the server is checked ({waive}: database)")
    return problems


def production_problems(env: Mapping[str, str], needs: Iterable[str]) -> list[str]:
    """What keeps a process with these settings from starting in production, one line each, each
    naming its variable: a setting the process needs that is not set (its default is development's),
    a key that is a development or placeholder value, a server URL with the default account, a
    placeholder or no password. Every guarded setting that is set is checked, needed or not."""
    dev, material = _dev_values()
    try:
        insecure = _transports(env.get(env_name("insecure_transport"), ""))
    except ValueError as exc:
        return [f"{env_name('insecure_transport')} {exc}"]
    needs = {n for n in needs if TLS_NEEDS.get(n) not in insecure}
    problems = _transport_problems(env, insecure)
    for f in fields(Settings):
        name, guards = env_name(f.name), f.metadata["guards"]
        raw = env.get(name, "")
        if not raw:
            if f.name in TLS_NEEDS and f.name in needs:
                problems.append(f"{name} is not set: production serves and dials gRPC over TLS only "
                                f"(or name grpc in {env_name('insecure_transport')} when something else encrypts it)")
            elif f.name in needs:
                problems.append(f"{name} is not set: production needs its own value, not the development default")
            continue
        if guards == KEY:
            problem = _key_problem(name, raw, dev, material)
        elif guards == CREDENTIALS:
            problem = _credentials_problem(name, raw)
        else:
            continue
        if problem:
            problems.append(problem)
    return problems
