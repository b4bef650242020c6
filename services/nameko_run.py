"""Runs a service's nameko worker: `python -m services.nameko_run services.grid.service`.

What `nameko run <module> --broker <uri>` does (eventlet's monkey patching first, then the
service's module, then nameko's runner until SIGTERM), but with the settings every gridbus process
starts with (services/registry.py `start`: in production, no development keys or default
credentials) and the broker's address and TLS from them (shared/tls.py), so neither the password
nor the certificates' paths go on the command line."""
from __future__ import annotations

import sys
import warnings

warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()  # before the rest is imported, as nameko's own command does


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m services.nameko_run <service module>  (services.grid.service, ...)")
    from services import registry
    by_module = {p.module: p for _, p in registry.processes() if p.kind == registry.NAMEKO}
    if argv[0] not in by_module:
        raise SystemExit(f"{argv[0]} is no nameko module in services/registry.py: {', '.join(sorted(by_module))}")
    s = registry.start(by_module[argv[0]].name)
    service = next(svc for svc in registry.SERVICES if svc.nameko == argv[0])
    try:
        workers = service.nameko_workers()
    except RuntimeError as exc:
        raise SystemExit(f"gridbus {service.name}-nameko: {exc}")

    from nameko.cli.run import import_service, run

    from shared.logs import setup_logging
    from shared.nameko_support import nameko_config
    setup_logging()
    run(import_service(argv[0]), nameko_config(s, workers))


if __name__ == "__main__":
    main()
