"""Every gridbus process (from services/registry.py): what `make run`, the benchmarks and the soak start."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from demo.supervisor import Supervisor
from services import registry

_BIN = Path(sys.executable).parent


def _argv(process: registry.Process, amqp_uri: str) -> list[str]:
    if process.kind == registry.NAMEKO:
        return [str(_BIN / "nameko"), "run", process.module, "--broker", amqp_uri]
    return [sys.executable, "-m", process.module]


def processes(amqp_uri: str) -> dict[str, list[tuple[str, list[str]]]]:
    """service -> [(process name, argv)]; services whose package is not there are left out."""
    return {s.name: [(p.name, _argv(p, amqp_uri)) for p in s.processes]
            for s in registry.SERVICES if importlib.util.find_spec(f"services.{s.name}")}


def start(sup: Supervisor, amqp_uri: str, only: list[str] | None = None) -> list[str]:
    """Starts the services' processes under the supervisor; returns the services started."""
    started = []
    for service, procs in processes(amqp_uri).items():
        if only is None or service in only:
            for name, argv in procs:
                sup.add(name, *argv)
            started.append(service)
    return started
