"""TLS for the development PostgreSQL on this machine (scripts/infra.sh, and the tests that connect
with sslmode=verify-full): a CA and a server certificate for localhost in the server's data
directory, switched on by a reload (ALTER SYSTEM + pg_reload_conf), never a restart.

Idempotent: a server that already serves a certificate from the CA in its data directory is left
as it is, so concurrent test runs share one CA. Authentication is untouched: pg_hba.conf's `host`
lines match TLS and plaintext connections alike. Run: python -m scripts.postgres_tls [ADMIN_DSN];
it prints the CA's path (what sslrootcert= names)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from shared.pki import CA, DEV_HOSTS

CA_CERT, CA_KEY = "gridbus-ca.crt", "gridbus-ca.key"
SERVER_CERT, SERVER_KEY = "gridbus-server.crt", "gridbus-server.key"
DEFAULT_ADMIN_DSN = "postgresql://root@127.0.0.1:5432/postgres"


def _verified(admin_dsn: str, ca_cert: Path) -> bool:
    """A connection that checks the server's certificate against ca_cert, and its name, succeeds."""
    if not ca_cert.exists():
        return False
    try:
        with psycopg.connect(admin_dsn, sslmode="verify-full", sslrootcert=str(ca_cert), connect_timeout=5) as conn:
            return conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
    except psycopg.OperationalError:
        return False


def _write(path: Path, data: bytes, owner: os.stat_result, mode: int) -> None:
    """Written aside and renamed over, owned by the data directory's owner: a reload never reads half a file,
    and PostgreSQL refuses a key anyone else may read."""
    aside = path.with_name(path.name + ".new")
    aside.write_bytes(data)
    os.chown(aside, owner.st_uid, owner.st_gid)
    aside.chmod(mode)
    os.replace(aside, path)


def ensure(admin_dsn: str = DEFAULT_ADMIN_DSN, timeout: float = 20.0) -> Path:
    """Makes the server serve TLS with a certificate from its data directory's CA; returns the CA's path."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext('gridbus-postgres-tls'))")  # one run at a time
        data_dir = Path(conn.execute("SHOW data_directory").fetchone()[0])
        ca_cert = data_dir / CA_CERT
        if _verified(admin_dsn, ca_cert):
            return ca_cert
        try:
            owner = data_dir.stat()
            ca = (CA.load(ca_cert.read_bytes(), (data_dir / CA_KEY).read_bytes())
                  if ca_cert.exists() and (data_dir / CA_KEY).exists() else CA.create("gridbus development database CA"))
            host = urlsplit(admin_dsn).hostname or "localhost"
            server = ca.issue("postgres", dict.fromkeys([*DEV_HOSTS, host]))
            _write(data_dir / CA_KEY, ca.own.key, owner, 0o600)
            _write(ca_cert, ca.cert_pem, owner, 0o644)
            _write(data_dir / SERVER_KEY, server.key, owner, 0o600)
            _write(data_dir / SERVER_CERT, server.cert, owner, 0o644)
        except PermissionError as exc:
            raise SystemExit(f"PostgreSQL's data directory {data_dir} must be writable here (run as root or "
                             f"its owner, on the database's machine): {exc}")
        conn.execute(f"ALTER SYSTEM SET ssl_cert_file = '{SERVER_CERT}'")
        conn.execute(f"ALTER SYSTEM SET ssl_key_file = '{SERVER_KEY}'")
        conn.execute("ALTER SYSTEM SET ssl = on")
        conn.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + timeout
        while not _verified(admin_dsn, ca_cert):  # the postmaster reloads asynchronously
            if time.monotonic() > deadline:
                raise SystemExit(f"PostgreSQL does not serve TLS with {data_dir / SERVER_CERT} after a reload; "
                                 "see its log")
            time.sleep(0.2)
        return ca_cert


if __name__ == "__main__":
    print(ensure(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GRIDBUS_TEST_ADMIN_DSN", DEFAULT_ADMIN_DSN)))
