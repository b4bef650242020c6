"""TLS on the real servers for the tests: an AMQPS listener the test run adds to the running
RabbitMQ (with certificates it makes) and removes after, and PostgreSQL's TLS (scripts/postgres_tls.py)."""
from __future__ import annotations

import base64
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shared.pki import CA, Issued
from tests.support import free_port


def _der_b64(pem: bytes, key: bool = False) -> str:
    if key:
        der = serialization.load_pem_private_key(pem, None).private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    else:
        der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return base64.b64encode(der).decode()


def _eval(expression: str) -> str:
    done = subprocess.run(["rabbitmqctl", "-q", "eval", expression], capture_output=True, text=True, timeout=60)
    if done.returncode or done.stdout.strip() != "ok":
        raise RuntimeError(f"rabbitmqctl eval: {done.stdout.strip()} {done.stderr.strip()}")
    return done.stdout


@contextmanager
def amqps_listener(ca: CA, server: Issued, *, require_client_cert: bool = True) -> Iterator[int]:
    """An AMQPS listener on 127.0.0.1 of the running broker, serving `server` and, with
    require_client_cert, taking only clients with a certificate from `ca` (what
    `listeners.ssl` and `ssl_options` in rabbitmq.conf do from the next start). A listener is
    added while the node runs (rabbit_networking), so the broker is never restarted; the
    certificates are passed in memory, so the broker needs no files of ours. Yields its port."""
    port = free_port()
    options = (f'[{{cert, base64:decode(<<"{_der_b64(server.cert)}">>)}}, '
               f'{{key, {{\'PrivateKeyInfo\', base64:decode(<<"{_der_b64(server.key, key=True)}">>)}}}}, '
               f'{{cacerts, [base64:decode(<<"{_der_b64(ca.cert_pem)}">>)]}}, {{verify, verify_peer}}, '
               f'{{fail_if_no_peer_cert, {str(require_client_cert).lower()}}}]')
    _eval(f'{{ok, _}} = application:ensure_all_started(ssl), '
          f'rabbit_networking:start_ssl_listener({{"127.0.0.1", {port}}}, {options}, 1).')
    try:
        yield port
    finally:
        _eval(f'rabbit_networking:stop_tcp_listener({{"127.0.0.1", {port}}}).')


def postgres_ca(admin_dsn: str) -> Path:
    """PostgreSQL serves TLS with a certificate from the returned CA (turned on by a reload if need be)."""
    from scripts.postgres_tls import ensure
    return ensure(admin_dsn)
