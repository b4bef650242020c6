"""Production mode's rules (shared/config.py `start` applies them with GRIDBUS_ENV=production): which
settings every process needs, and what makes a key or a server URL unfit for production."""
from __future__ import annotations

import base64
from dataclasses import fields
from typing import Iterable, Mapping
from urllib.parse import urlsplit

from shared import config
from shared.config import (CREDENTIALS, DEFAULT_BROKER_USER, KEY, MIN_API_KEY_CHARACTERS, PLACEHOLDER, Settings,
                           _ed25519_key, env_name)

# What every gridbus process needs set in production, whatever it does; services/registry.py adds
# each process's own keys.
EVERY_PROCESS_NEEDS = ("amqp_uri", "database_url", "token_key")


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


def production_problems(env: Mapping[str, str], needs: Iterable[str]) -> list[str]:
    """What keeps a process with these settings from starting in production, one line each, each
    naming its variable: a setting the process needs that is not set (its default is development's),
    a key that is a development or placeholder value, a server URL with the default account, a
    placeholder or no password. Every guarded setting that is set is checked, needed or not."""
    dev, material = _dev_values()
    needs = set(needs)
    problems = []
    for f in fields(Settings):
        name, guards = env_name(f.name), f.metadata["guards"]
        raw = env.get(name, "")
        if not raw:
            if f.name in needs:
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
