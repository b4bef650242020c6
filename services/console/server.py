"""The console's process: the web app under uvicorn.

Run: python -m services.console.server (GRIDBUS_CONSOLE_HTTP_HOST:GRIDBUS_CONSOLE_HTTP_PORT,
default http://127.0.0.1:8080/). Behind a TLS proxy, set FORWARDED_ALLOW_IPS to the proxy's
address so the session cookie is marked Secure."""
from __future__ import annotations

import logging

import uvicorn

from services import registry
from services.console.app import create_app
from shared.logs import setup_logging

log = logging.getLogger(__name__)


def main() -> None:
    s = registry.start("console-http")
    setup_logging()
    port = registry.port("console", registry.HTTP)
    log.info("console on http://%s:%d/", s.console_http_host, port)
    uvicorn.run(create_app(s), host=s.console_http_host, port=port, log_level=s.log_level.lower(),
                proxy_headers=True, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
