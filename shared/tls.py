"""TLS on every link that crosses a network, from the settings (shared/config.py): gRPC servers'
credentials (with clients' certificates required for mutual TLS), gRPC channels, the broker's
TLS options for kombu and nameko. PostgreSQL's TLS is libpq's, from the database URL's sslmode.

A server re-reads its certificate, key and client CA when the files change (a new handshake sees
the new ones), so certificates are rotated by replacing the files, without a restart."""
from __future__ import annotations

import logging
import os
import ssl
import threading
from pathlib import Path
from typing import Any
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shared.config import Settings, env_name, settings

if TYPE_CHECKING:
    import grpc  # imported where used: the nameko processes (eventlet) never load grpc

log = logging.getLogger(__name__)

SYSTEM_ROOTS = "system"


class TLSConfigError(RuntimeError):
    """A TLS setting that cannot work; the message names the variable."""


def _read(field: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TLSConfigError(f"{env_name(field)}: cannot read {path}: {exc.strerror}") from None


def _pair(s: Settings, cert_field: str, key_field: str) -> tuple[str, str] | None:
    cert, key = getattr(s, cert_field), getattr(s, key_field)
    if bool(cert) != bool(key):
        have, missing = (cert_field, key_field) if cert else (key_field, cert_field)
        raise TLSConfigError(f"{env_name(have)} is set but {env_name(missing)} is not: set both or neither")
    return (cert, key) if cert else None


# --- gRPC servers ------------------------------------------------------------------------------

class _ServerFiles:
    """The server's certificate, key and client CA as read last; `fetch` gives grpc a new
    configuration when a file has changed since (grpc asks on every new handshake)."""

    def __init__(self, s: Settings, pair: tuple[str, str]):
        self._fields = {"grpc_tls_cert": pair[0], "grpc_tls_key": pair[1]}
        if s.grpc_tls_client_ca:
            self._fields["grpc_tls_client_ca"] = s.grpc_tls_client_ca
        self._lock = threading.Lock()
        self._stamp = self._stamps()
        self.initial = self._configuration()

    def _stamps(self) -> tuple:
        out = []
        for field, path in self._fields.items():
            try:
                st = os.stat(path)
            except OSError as exc:
                raise TLSConfigError(f"{env_name(field)}: cannot read {path}: {exc.strerror}") from None
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)

    def _configuration(self):
        import grpc
        data = {f: _read(f, p) for f, p in self._fields.items()}
        return grpc.ssl_server_certificate_configuration([(data["grpc_tls_key"], data["grpc_tls_cert"])],
                                                         root_certificates=data.get("grpc_tls_client_ca"))

    def fetch(self):
        with self._lock:
            try:
                stamp = self._stamps()
                if stamp == self._stamp:
                    return None
                configuration = self._configuration()
            except TLSConfigError as exc:  # half-replaced files: keep serving the old ones
                log.warning("gRPC TLS files not reloaded: %s", exc)
                return None
            self._stamp = stamp
            log.info("gRPC TLS certificate reloaded from %s", self._fields["grpc_tls_cert"])
            return configuration


def server_credentials(s: Settings | None = None) -> grpc.ServerCredentials | None:
    """TLS credentials for a gRPC server, or None (plaintext) without GRIDBUS_GRPC_TLS_CERT.
    With GRIDBUS_GRPC_TLS_CLIENT_CA, a client without a certificate from that CA is refused."""
    s = s or settings()
    pair = _pair(s, "grpc_tls_cert", "grpc_tls_key")
    if pair is None:
        if s.grpc_tls_client_ca:
            raise TLSConfigError(f"{env_name('grpc_tls_client_ca')} needs {env_name('grpc_tls_cert')} "
                                 f"and {env_name('grpc_tls_key')}: mutual TLS is TLS first")
        return None
    import grpc
    files = _ServerFiles(s, pair)
    return grpc.dynamic_ssl_server_credentials(files.initial, files.fetch,
                                               require_client_authentication=bool(s.grpc_tls_client_ca))


# --- gRPC clients ------------------------------------------------------------------------------

def channel_credentials(s: Settings | None = None) -> grpc.ChannelCredentials | None:
    """Credentials for a gRPC channel, or None (plaintext) without GRIDBUS_GRPC_TLS_CA."""
    s = s or settings()
    pair = _pair(s, "grpc_client_cert", "grpc_client_key")
    if not s.grpc_tls_ca:
        if pair:
            raise TLSConfigError(f"{env_name('grpc_client_cert')} needs {env_name('grpc_tls_ca')}: "
                                 "a client certificate is only sent over TLS")
        return None
    import grpc
    roots = None if s.grpc_tls_ca == SYSTEM_ROOTS else _read("grpc_tls_ca", s.grpc_tls_ca)
    key, chain = (_read("grpc_client_key", pair[1]), _read("grpc_client_cert", pair[0])) if pair else (None, None)
    return grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=chain)


def channel(target: str, s: Settings | None = None, options=None) -> grpc.Channel:
    """A channel to a gridbus gRPC server: TLS when the settings say so, else plaintext."""
    import grpc
    credentials = channel_credentials(s)
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)


def aio_channel(target: str, s: Settings | None = None, options=None) -> grpc.aio.Channel:
    """The same for grpc.aio (the console)."""
    import grpc.aio
    credentials = channel_credentials(s)
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)


# --- the broker --------------------------------------------------------------------------------

def amqp_ssl(s: Settings | None = None, uri: str | None = None) -> dict[str, Any] | None:
    """kombu's (and nameko's AMQP_SSL) TLS options for an amqps:// URI: the broker's certificate
    verified against GRIDBUS_AMQP_SSL_CA (or the system's roots) and its host name checked, a
    client certificate when one is set. None for amqp:// (plaintext)."""
    s = s or settings()
    uri = uri or s.amqp_uri
    pair = _pair(s, "amqp_ssl_cert", "amqp_ssl_key")
    if urlsplit(uri).scheme != "amqps":
        if s.amqp_ssl_ca or pair:
            named = env_name("amqp_ssl_ca") if s.amqp_ssl_ca else env_name("amqp_ssl_cert")
            raise TLSConfigError(f"{named} is set but {env_name('amqp_uri')} is not amqps://: "
                                 "the broker would be reached without TLS")
        return None
    options: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED,
                               "server_hostname": None}  # None: kombu checks the URI's host name
    if s.amqp_ssl_ca:
        _read("amqp_ssl_ca", s.amqp_ssl_ca)  # a missing file is named now, not at the first connection
        options["ca_certs"] = s.amqp_ssl_ca
    if pair:
        _read("amqp_ssl_cert", pair[0])
        _read("amqp_ssl_key", pair[1])
        options["certfile"], options["keyfile"] = pair
    return options


def management_verify(s: Settings | None = None) -> ssl.SSLContext | bool:
    """httpx's `verify` for RabbitMQ's management API over https (`gridbus levels`, device users):
    the broker's CA, GRIDBUS_AMQP_SSL_CA, else the system's roots."""
    s = s or settings()
    if not s.amqp_ssl_ca:
        return True
    _read("amqp_ssl_ca", s.amqp_ssl_ca)
    return ssl.create_default_context(cafile=s.amqp_ssl_ca)


def amqp_connection(uri: str | None = None, s: Settings | None = None, **kwargs):
    """A kombu Connection to the broker with the settings' TLS (plaintext for amqp://)."""
    import kombu
    s = s or settings()
    uri = uri or s.amqp_uri
    return kombu.Connection(uri, ssl=amqp_ssl(s, uri) or False, **kwargs)
