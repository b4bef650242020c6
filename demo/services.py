"""Every gridbus process, in one list: what `make run`, the benchmarks and the soak start."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from demo.supervisor import Supervisor

_BIN = Path(sys.executable).parent


def _nameko(module: str, amqp_uri: str) -> list[str]:
    return [str(_BIN / "nameko"), "run", module, "--broker", amqp_uri]


def processes(amqp_uri: str) -> dict[str, list[tuple[str, list[str]]]]:
    """service -> [(process name, argv)]; services whose package is not there are left out."""
    py = sys.executable
    table = {
        "grid": [("grid-nameko", _nameko("services.grid.service", amqp_uri)),
                 ("grid-grpc", [py, "-m", "services.grid.grpc_server"])],
        "incidents": [("incidents-nameko", _nameko("services.incidents.service", amqp_uri)),
                      ("incidents-grpc", [py, "-m", "services.incidents.grpc_server"])],
        "dispatch": [("dispatch-nameko", _nameko("services.dispatch.service", amqp_uri)),
                     ("dispatch-grpc", [py, "-m", "services.dispatch.grpc_server"])],
        "credit": [("credit-nameko", _nameko("services.credit.service", amqp_uri)),
                   ("credit-grpc", [py, "-m", "services.credit.grpc_server"])],
        "subscriptions": [("subscriptions-grpc", [py, "-m", "services.subscriptions.grpc_server"])],
        "open311": [("open311-http", [py, "-m", "services.open311.http_server"])],
        "console": [("console-http", [py, "-m", "services.console.server"])],
    }
    return {name: procs for name, procs in table.items() if importlib.util.find_spec(f"services.{name}")}


def start(sup: Supervisor, amqp_uri: str, only: list[str] | None = None) -> list[str]:
    """Starts the services' processes under the supervisor; returns the services started."""
    started = []
    for service, procs in processes(amqp_uri).items():
        if only is None or service in only:
            for name, argv in procs:
                sup.add(name, *argv)
            started.append(service)
    return started
