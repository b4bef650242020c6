"""The Open311 gateway's process, shared by the package's tests."""
from __future__ import annotations

import urllib.request
import uuid
from pathlib import Path

import pytest

from shared.health import wait_until
from tests.support import Process, free_port, python

API_KEY = "k-" + uuid.uuid4().hex
OTHER_KEY = "k-" + uuid.uuid4().hex


@pytest.fixture(scope="package")
def base(environment, city, categories):
    port = free_port()
    proc = Process(python("-m", "services.open311.http_server"),
                   {**environment, "GRIDBUS_OPEN311_HTTP_PORT": str(port),
                    "GRIDBUS_OPEN311_API_KEYS": f"{API_KEY}=city-app,{OTHER_KEY}=other-app",
                    # Tests (and the property-based run) are one client; the limit is test_limits.py's.
                    "GRIDBUS_PUBLIC_RATE_LIMIT": "100000/minute"}, "open311", Path(environment["LOG_DIR"]))
    proc.start()

    def healthy():
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
    try:
        wait_until(healthy, 30, alive=lambda: proc.popen.poll() is None)
        yield f"http://127.0.0.1:{port}/open311/v2"
    finally:
        proc.stop()
