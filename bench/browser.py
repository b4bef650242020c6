"""What the browser benchmarks (bench_console.py, bench_officer.py) share: the console and the gRPC
servers it calls, on free ports under one supervisor; and a blank page served from this process,
the floor any page's first paint pays in the same browser on the same link. Chromium itself is
tests/browser.py's (Debian's, launched the same way as in the tests)."""
from __future__ import annotations

import contextlib
import http.server
import os
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

import httpx

from demo.supervisor import Supervisor
from shared.health import check_grpc, wait_until
from tests.support import free_port

FCP = "() => performance.getEntriesByName('first-contentful-paint')[0].startTime"
PAINTED = "() => performance.getEntriesByName('first-contentful-paint').length > 0"


def start_console(log_dir: Path, services: tuple[str, ...], *, prefix: str = "",
                  env: dict[str, str] | None = None) -> tuple[Supervisor, str]:
    """The named services' gRPC servers and the console, each on a free port, once all answer;
    the supervisor (stop() it) and the console's base URL."""
    ports = {name: free_port() for name in services}
    http_port = free_port()
    full_env = {**os.environ, **{f"GRIDBUS_{n.upper()}_GRPC_PORT": str(p) for n, p in ports.items()},
                "GRIDBUS_CONSOLE_HTTP_PORT": str(http_port), **(env or {})}
    from demo.services import broker_users
    from shared.broker_users import env_name
    full_env.update(broker_users(full_env))  # each service as its own broker user, as `make run` has them
    sup = Supervisor(full_env, log_dir)
    for name in ports:
        sup.add(f"{prefix}{name}-grpc", sys.executable, "-m", f"services.{name}.grpc_server",
                env={"GRIDBUS_AMQP_URI": full_env[env_name(name)]})
    sup.add(f"{prefix}console-http", sys.executable, "-m", "services.console.server",
            env={"GRIDBUS_AMQP_URI": full_env[env_name("console")]})
    base = f"http://127.0.0.1:{http_port}"
    try:
        for port in ports.values():
            wait_until(lambda port=port: check_grpc(f"127.0.0.1:{port}", timeout=1))
        wait_until(lambda: httpx.get(base + "/healthz", timeout=1).raise_for_status())
    except BaseException:
        sup.stop()
        raise
    return sup, base


class BlankPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!doctype html><meta charset=utf-8><title>blank</title><p>gridbus</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def blank_page() -> Iterator[str]:
    """A blank page's URL, served while the block runs."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BlankPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()


def first_paint_ms(page) -> float:
    """The page's first contentful paint, in ms from navigation start, once it has happened."""
    page.wait_for_function(PAINTED)
    return page.evaluate(FCP)


def blank_paints(browser, url: str, reps: int, prepare: Callable = lambda page: None, **context_args) -> list[float]:
    """First contentful paint of the blank page, each in a fresh context (`context_args`: the
    viewport or the device; `prepare(page)` before loading: a throttled link)."""
    out = []
    for _ in range(reps):
        context = browser.new_context(**context_args)
        page = context.new_page()
        prepare(page)
        page.goto(url)
        out.append(first_paint_ms(page))
        context.close()
    return out
