"""Every nameko service waits for PostgreSQL through eventlet, not in C poll(), which would
freeze the whole process while one green thread waits (a query, or the relay's LISTEN)."""
import subprocess
import sys

import pytest


@pytest.mark.parametrize("service", ["grid", "incidents", "dispatch", "credit"])
def test_psycopg_waits_cooperatively_under_nameko(service):
    code = ("import eventlet; eventlet.monkey_patch()\n"
            f"import services.{service}.service, psycopg.waiting\n"
            "print(psycopg.waiting.wait.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "wait_select"
