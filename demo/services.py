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


def start(sup: Supervisor, only: list[str] | None = None) -> list[str]:
    """Starts the services' processes under the supervisor; returns the services started."""
    started = []
    for service, procs in processes().items():
        if only is None or service in only:
            for name, argv in procs:
                sup.add(name, *argv)
            started.append(service)
    return started
