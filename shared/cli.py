"""What every `gridbus` command shares: who a command on the database acts as, a gRPC stub
for a command that acts as a person, and a progress bar. The commands themselves are in
services/cli.py (the platform's) and each service's cli.py."""
from __future__ import annotations

import getpass
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from shared.auth import SERVICE, Principal
from shared.config import settings


def operator_principal() -> Principal:
    """Commands run with database access act for the system, named after the OS user."""
    return Principal(member_id=f"cli:{getpass.getuser()}", role=SERVICE, scope=())


def operator_stub(stub_class, server: str | None, default_port: int, token: str | None):
    """A gRPC stub for a command that acts as a person, and the metadata carrying their token
    (--token, else GRIDBUS_TOKEN)."""
    from shared import tls
    token = token or settings().token
    if not token:
        raise SystemExit("gridbus: give --token or set GRIDBUS_TOKEN (gridbus token mint ...)")
    channel = tls.channel(server or f"localhost:{default_port}")  # TLS when GRIDBUS_GRPC_TLS_CA is set
    return stub_class(channel), [("authorization", f"Bearer {token}")]


def call_or_exit(fn, *a, **kw):
    """Call a gRPC method; a refusal ends the command with its status and message."""
    import grpc
    try:
        return fn(*a, **kw)
    except grpc.RpcError as exc:
        raise SystemExit(f"gridbus: {exc.code().name}: {exc.details()}")


@contextmanager
def progress(total: int, label: str, unit: str = "items") -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for the block; call what it gives with each step's count."""
    from tqdm import tqdm
    with tqdm(total=total, desc=label, unit=f" {unit}", file=sys.stderr) as bar:
        yield bar.update
