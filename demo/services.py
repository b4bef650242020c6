"""Every gridbus process (from services/registry.py): what `make run`, the benchmarks and the soak start."""
from __future__ import annotations

import importlib.util
import sys

from demo.supervisor import Supervisor
from services import registry


def _argv(process: registry.Process) -> list[str]:
    # The broker's address comes from GRIDBUS_AMQP_URI, as every setting does.
    if process.kind == registry.NAMEKO:
        return [sys.executable, "-m", "services.nameko_run", process.module]
    return [sys.executable, "-m", process.module]


def processes() -> dict[str, list[tuple[str, list[str]]]]:
    """service -> [(process name, argv)]; services whose package is not there are left out."""
    return {s.name: [(p.name, _argv(p)) for p in s.processes]
            for s in registry.SERVICES if importlib.util.find_spec(f"services.{s.name}")}


def broker_users(env: dict) -> dict[str, str]:
    """Each service's broker URI (GRIDBUS_AMQP_URI_<SERVICE>): env's when it has them all, else
    every service's user made (or reset, with new passwords) in GRIDBUS_AMQP_URI's vhost through
    GRIDBUS_BROKER_MANAGEMENT_URL, as `gridbus broker users` does (shared/broker_users.py)."""
    from shared import broker_users as users
    from shared.config import settings
    names = [users.env_name(s) for s in (*users.SERVICES, users.LINK)]
    if all(env.get(n) for n in names):
        return {n: env[n] for n in names}
    s = settings(env)
    return users.provision(s.broker_management_url, s.amqp_uri, prefix=s.broker_user_prefix, env={})


def start(sup: Supervisor, only: list[str] | None = None) -> list[str]:
    """Starts the services' processes under the supervisor, each service as its own broker user;
    returns the services started."""
    from shared.broker_users import env_name
    uris = broker_users(sup.env)
    sup.env.update(uris)
    started = []
    for service, procs in processes().items():
        if only is None or service in only:
            own = {"GRIDBUS_AMQP_URI": uris[env_name(service)]} if env_name(service) in uris else {}
            for name, argv in procs:
                sup.add(name, *argv, env=own)
            started.append(service)
    return started
