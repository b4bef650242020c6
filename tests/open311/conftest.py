"""The Open311 gateway's process, shared by the package's tests."""
from __future__ import annotations

import uuid

import pytest

from tests.support import service_process

API_KEY = "k-" + uuid.uuid4().hex
OTHER_KEY = "k-" + uuid.uuid4().hex


@pytest.fixture(scope="package")
def base(environment, city, categories):
    keys = {"GRIDBUS_OPEN311_API_KEYS": f"{API_KEY}=city-app,{OTHER_KEY}=other-app",
            # Tests (and the property-based run) are one client; the limit is test_limits.py's.
            "GRIDBUS_PUBLIC_RATE_LIMIT": "100000/minute"}
    with service_process(environment, "open311", "http", env=keys) as proc:
        yield f"http://127.0.0.1:{proc.port}/open311/v2"
