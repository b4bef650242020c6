"""TLS on every link, with certificates each test makes (shared/pki.py): gRPC with server TLS and
with clients' certificates required (mutual TLS), certificates rotated without a restart; the
settings that cannot work, named."""
from __future__ import annotations

import os
import ssl

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared import tls
from shared.config import settings
from shared.grpc_support import serve
from shared.pki import CA


@pytest.fixture
def ca():
    return CA.create("test CA")


@pytest.fixture
def certs(tmp_path, ca):
    """A CA's certificate, a server certificate for 127.0.0.1 and a client certificate, in files."""
    paths = {"ca": tmp_path / "ca.crt"}
    paths["ca"].write_bytes(ca.cert_pem)
    paths["server.crt"], paths["server.key"] = ca.issue("grid-grpc", ["127.0.0.1", "localhost"]).write(tmp_path, "server")
    paths["client.crt"], paths["client.key"] = ca.issue("console", server=False, client=True).write(tmp_path, "client")
    return {k: str(v) for k, v in paths.items()}


def _server(monkeypatch, env: dict[str, str]):
    for key in [k for k in os.environ if k.startswith("GRIDBUS_GRPC")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    server, port = serve("tls-test", lambda *_: None, None, 0, block=False)
    return server, f"127.0.0.1:{port}"


def _check(target: str, **env: str) -> int:
    """Health over a channel made from these client settings; the status it answers."""
    s = settings({f"GRIDBUS_{k.upper()}": v for k, v in env.items()})
    with tls.channel(target, s) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def _refused(target: str, **env: str) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as refused:
        _check(target, **env)
    return refused.value.code()


SERVING = health_pb2.HealthCheckResponse.SERVING


def test_a_tls_server_answers_a_tls_client_and_refuses_plaintext(monkeypatch, certs):
    server, target = _server(monkeypatch, {"GRIDBUS_GRPC_TLS_CERT": certs["server.crt"],
                                           "GRIDBUS_GRPC_TLS_KEY": certs["server.key"]})
    try:
        assert _check(target, grpc_tls_ca=certs["ca"]) == SERVING
        assert _refused(target) == grpc.StatusCode.UNAVAILABLE  # plaintext: no answer
        # A client that trusts another CA does not take this server for the one it dials.
        other = CA.create("someone else's CA")
        other_ca = os.path.join(os.path.dirname(certs["ca"]), "other-ca.crt")
        open(other_ca, "wb").write(other.cert_pem)
        assert _refused(target, grpc_tls_ca=other_ca) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)


def test_mutual_tls_takes_only_clients_with_a_certificate_from_the_ca(monkeypatch, certs, tmp_path):
    server, target = _server(monkeypatch, {"GRIDBUS_GRPC_TLS_CERT": certs["server.crt"],
                                           "GRIDBUS_GRPC_TLS_KEY": certs["server.key"],
                                           "GRIDBUS_GRPC_TLS_CLIENT_CA": certs["ca"]})
    try:
        mine = {"grpc_tls_ca": certs["ca"]}
        assert _check(target, **mine, grpc_client_cert=certs["client.crt"], grpc_client_key=certs["client.key"]) == SERVING
        assert _refused(target, **mine) == grpc.StatusCode.UNAVAILABLE  # no certificate
        assert _refused(target) == grpc.StatusCode.UNAVAILABLE          # no TLS at all
        # A client certificate from another CA, however well-formed, is not one of ours.
        stranger = CA.create("another CA").issue("console", server=False, client=True).write(tmp_path, "stranger")
        assert _refused(target, **mine, grpc_client_cert=str(stranger[0]),
                        grpc_client_key=str(stranger[1])) == grpc.StatusCode.UNAVAILABLE
        # A server certificate of our CA is no client certificate (its extended key usage says so).
        assert _refused(target, **mine, grpc_client_cert=certs["server.crt"],
                        grpc_client_key=certs["server.key"]) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)


def test_replaced_certificate_files_serve_the_next_handshake_without_a_restart(monkeypatch, certs, tmp_path):
    server, target = _server(monkeypatch, {"GRIDBUS_GRPC_TLS_CERT": certs["server.crt"],
                                           "GRIDBUS_GRPC_TLS_KEY": certs["server.key"]})
    try:
        assert _check(target, grpc_tls_ca=certs["ca"]) == SERVING
        new_ca = CA.create("next year's CA")
        (tmp_path / "new-ca.crt").write_bytes(new_ca.cert_pem)
        issued = new_ca.issue("grid-grpc", ["127.0.0.1"])
        # Replaced as a deployment replaces them: new files renamed over the old ones.
        for data, path in ((issued.key, certs["server.key"]), (issued.cert, certs["server.crt"])):
            with open(path + ".new", "wb") as f:
                f.write(data)
            os.replace(path + ".new", path)
        assert _check(target, grpc_tls_ca=str(tmp_path / "new-ca.crt")) == SERVING
        assert _refused(target, grpc_tls_ca=certs["ca"]) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)


def test_the_console_dials_its_services_over_mutual_tls(monkeypatch, certs):
    """The console's channels (grpc.aio) take the same settings: with them a call reaches the
    server (which has no grid service here: UNIMPLEMENTED), without them it never gets there."""
    import asyncio

    from services.console.clients import ServiceError, Services
    server, target = _server(monkeypatch, {"GRIDBUS_GRPC_TLS_CERT": certs["server.crt"],
                                           "GRIDBUS_GRPC_TLS_KEY": certs["server.key"],
                                           "GRIDBUS_GRPC_TLS_CLIENT_CA": certs["ca"]})

    async def call(**env: str) -> str:
        services = Services(settings({"GRIDBUS_GRID_GRPC_TARGET": target, **env}))
        try:
            await services.unit("token", "330100")
        except ServiceError as exc:
            return exc.code
        finally:
            await services.close()
    try:
        assert asyncio.run(call(GRIDBUS_GRPC_TLS_CA=certs["ca"], GRIDBUS_GRPC_CLIENT_CERT=certs["client.crt"],
                                GRIDBUS_GRPC_CLIENT_KEY=certs["client.key"])) == "UNIMPLEMENTED"
        assert asyncio.run(call()) == "UNAVAILABLE"
    finally:
        server.stop(None)


@pytest.mark.parametrize("env, words", [
    ({"GRIDBUS_GRPC_TLS_CERT": "/x.crt"}, "GRIDBUS_GRPC_TLS_CERT is set but GRIDBUS_GRPC_TLS_KEY is not"),
    ({"GRIDBUS_GRPC_TLS_KEY": "/x.key"}, "GRIDBUS_GRPC_TLS_KEY is set but GRIDBUS_GRPC_TLS_CERT is not"),
    ({"GRIDBUS_GRPC_TLS_CLIENT_CA": "/ca.crt"}, "GRIDBUS_GRPC_TLS_CLIENT_CA needs GRIDBUS_GRPC_TLS_CERT"),
    ({"GRIDBUS_GRPC_TLS_CERT": "/nowhere/x.crt", "GRIDBUS_GRPC_TLS_KEY": "/nowhere/x.key"},
     "GRIDBUS_GRPC_TLS_CERT: cannot read /nowhere/x.crt"),
])
def test_a_server_setting_that_cannot_work_is_named(env, words):
    with pytest.raises(tls.TLSConfigError, match=words):
        tls.server_credentials(settings(env))


@pytest.mark.parametrize("env, words", [
    ({"GRIDBUS_GRPC_CLIENT_CERT": "/c.crt", "GRIDBUS_GRPC_CLIENT_KEY": "/c.key"},
     "GRIDBUS_GRPC_CLIENT_CERT needs GRIDBUS_GRPC_TLS_CA"),
    ({"GRIDBUS_GRPC_TLS_CA": "/ca.crt", "GRIDBUS_GRPC_CLIENT_CERT": "/c.crt"}, "GRIDBUS_GRPC_CLIENT_KEY is not"),
    ({"GRIDBUS_GRPC_TLS_CA": "/nowhere/ca.crt"}, "GRIDBUS_GRPC_TLS_CA: cannot read /nowhere/ca.crt"),
])
def test_a_client_setting_that_cannot_work_is_named(env, words):
    with pytest.raises(tls.TLSConfigError, match=words):
        tls.channel_credentials(settings(env))


def test_without_tls_settings_grpc_is_plaintext_and_the_system_roots_are_a_choice():
    assert tls.server_credentials(settings({})) is None and tls.channel_credentials(settings({})) is None
    assert isinstance(tls.channel_credentials(settings({"GRIDBUS_GRPC_TLS_CA": "system"})), grpc.ChannelCredentials)


# --- a service's own process, and the `gridbus` command, over mutual TLS ------------------

@pytest.fixture(scope="module")
def module_certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    ca = CA.create("test CA")
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    ca.issue("incidents-grpc", ["127.0.0.1"]).write(directory, "server")
    ca.issue("operator", server=False, client=True).write(directory, "client")
    return directory


def test_a_service_and_the_command_line_speak_mutual_tls(environment, city, categories, module_certs):
    import subprocess
    import sys

    from tests.support import ROOT, service_process, token
    d = module_certs
    client = {"GRIDBUS_GRPC_TLS_CA": str(d / "ca.crt"), "GRIDBUS_GRPC_CLIENT_CERT": str(d / "client.crt"),
              "GRIDBUS_GRPC_CLIENT_KEY": str(d / "client.key")}
    server = {"GRIDBUS_GRPC_TLS_CERT": str(d / "server.crt"), "GRIDBUS_GRPC_TLS_KEY": str(d / "server.key"),
              "GRIDBUS_GRPC_TLS_CLIENT_CA": str(d / "ca.crt")}
    # Its health check (tests/support.py) dials with the client settings it is given: serving is TLS.
    with service_process(environment, "incidents", "grpc", name="incidents-grpc-mtls", env={**server, **client}) as proc:
        def gridbus(env: dict[str, str]) -> subprocess.CompletedProcess:
            base = {k: v for k, v in environment.items() if not k.startswith("GRIDBUS_GRPC")}
            return subprocess.run([sys.executable, "-m", "services.cli", "incidents", "--server", f"127.0.0.1:{proc.port}",
                                   "--token", token("admin", city.city_code), "list", "--limit", "1"],
                                  cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60)
        with_cert = gridbus(client)
        assert with_cert.returncode == 0, with_cert.stderr
        without_cert = gridbus({"GRIDBUS_GRPC_TLS_CA": client["GRIDBUS_GRPC_TLS_CA"]})
        assert without_cert.returncode != 0 and "UNAVAILABLE" in without_cert.stderr
        plaintext = gridbus({})
        assert plaintext.returncode != 0 and "UNAVAILABLE" in plaintext.stderr


# --- AMQPS to the real broker -------------------------------------------------------------

@pytest.fixture(scope="module")
def broker_tls(environment, tmp_path_factory):
    """A listener of the running RabbitMQ on its own port that speaks only TLS and takes only
    clients with a certificate from this test's CA; the settings a gridbus process reaches it with."""
    from tests.tls_support import amqps_listener
    d = tmp_path_factory.mktemp("amqps")
    ca = CA.create("broker test CA")
    (d / "ca.crt").write_bytes(ca.cert_pem)
    ca.issue("grid-nameko", server=False, client=True).write(d, "client")
    CA.create("another CA").issue("grid-nameko", server=False, client=True).write(d, "stranger")
    with amqps_listener(ca, ca.issue("rabbitmq", ["127.0.0.1"])) as port:
        vhost = environment["GRIDBUS_AMQP_URI"].rsplit("/", 1)[1]
        yield {"GRIDBUS_AMQP_URI": f"amqps://guest:guest@127.0.0.1:{port}/{vhost}",
               "GRIDBUS_AMQP_SSL_CA": str(d / "ca.crt"), "GRIDBUS_AMQP_SSL_CERT": str(d / "client.crt"),
               "GRIDBUS_AMQP_SSL_KEY": str(d / "client.key"), "dir": d, "port": port}


def _amqp_settings(broker_tls, **changes):
    """The broker's settings with some changed (None: unset)."""
    env = {**{k: v for k, v in broker_tls.items() if k.startswith("GRIDBUS_")}, **changes}
    return settings({k: v for k, v in env.items() if v is not None})


def test_amqps_to_the_real_broker_carries_messages_encrypted(environment, broker_tls):
    import kombu
    s = _amqp_settings(broker_tls)
    queue = f"tls-test-{os.getpid()}"
    with tls.amqp_connection(s=s) as conn:
        conn.connect()
        sock = conn.connection.transport.sock
        assert sock.version() in ("TLSv1.2", "TLSv1.3") and sock.getpeercert()["subject"]
        conn.default_channel.queue_declare(queue, auto_delete=False)
        conn.Producer().publish(b"over TLS", routing_key=queue, exchange="")
    # The same broker, read over its plaintext listener: what went in encrypted is there.
    with kombu.Connection(environment["GRIDBUS_AMQP_URI"]) as plain:
        message = wait_for_message(plain, queue)
        assert message.body == b"over TLS"
        plain.default_channel.queue_delete(queue)


def wait_for_message(conn, queue: str):
    from tests.support import wait_for
    return wait_for(lambda: conn.default_channel.basic_get(queue, no_ack=True))


@pytest.mark.parametrize("change", ["plaintext", "no client certificate", "a client certificate from another CA",
                                    "a broker certificate from a CA the client does not trust"])
def test_amqps_refuses_who_cannot_prove_itself(broker_tls, change):
    d = broker_tls["dir"]
    if change == "plaintext":
        s = _amqp_settings(broker_tls, GRIDBUS_AMQP_URI=broker_tls["GRIDBUS_AMQP_URI"].replace("amqps://", "amqp://"),
                           GRIDBUS_AMQP_SSL_CA=None, GRIDBUS_AMQP_SSL_CERT=None, GRIDBUS_AMQP_SSL_KEY=None)
    elif change == "no client certificate":
        s = _amqp_settings(broker_tls, GRIDBUS_AMQP_SSL_CERT=None, GRIDBUS_AMQP_SSL_KEY=None)
    elif change == "a client certificate from another CA":
        s = _amqp_settings(broker_tls, GRIDBUS_AMQP_SSL_CERT=str(d / "stranger.crt"),
                           GRIDBUS_AMQP_SSL_KEY=str(d / "stranger.key"))
    else:
        (d / "other-ca.crt").write_bytes(CA.create("not the broker's CA").cert_pem)
        s = _amqp_settings(broker_tls, GRIDBUS_AMQP_SSL_CA=str(d / "other-ca.crt"))
    with pytest.raises(Exception) as refused:
        with tls.amqp_connection(s=s, connect_timeout=5) as conn:
            conn.connect()
            conn.default_channel.queue_declare("tls-test-never", auto_delete=True, passive=True)
    # Refused in the handshake (a reset, an alert, a certificate that does not verify), never by our settings.
    assert isinstance(refused.value, OSError) and not isinstance(refused.value, tls.TLSConfigError), refused.value


def test_amqp_settings_that_cannot_work_are_named():
    with pytest.raises(tls.TLSConfigError, match="GRIDBUS_AMQP_SSL_CA is set but GRIDBUS_AMQP_URI is not amqps://"):
        tls.amqp_ssl(settings({"GRIDBUS_AMQP_SSL_CA": "/ca.crt"}))
    with pytest.raises(tls.TLSConfigError, match="GRIDBUS_AMQP_SSL_KEY is not"):
        tls.amqp_ssl(settings({"GRIDBUS_AMQP_URI": "amqps://u:p@h/", "GRIDBUS_AMQP_SSL_CERT": "/c.crt"}))
    assert tls.amqp_ssl(settings({})) is None
    # amqps:// alone: the system's roots, and the broker's host name checked.
    assert tls.amqp_ssl(settings({"GRIDBUS_AMQP_URI": "amqps://u:p@h/"})) == {"cert_reqs": ssl.CERT_REQUIRED,
                                                                               "server_hostname": None}


# --- PostgreSQL's sslmode -----------------------------------------------------------------

@pytest.fixture(scope="module")
def postgres_ca(environment):
    from tests.conftest import ADMIN_DSN
    from tests.tls_support import postgres_ca
    return postgres_ca(ADMIN_DSN)


def _encryption(url: str) -> tuple:
    """What pg_stat_ssl says of a connection made through gridbus's engine (shared/db.py)."""
    from sqlalchemy import text

    from shared.db import engine
    with engine(url).connect() as conn:
        return conn.execute(text("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).one()


def test_postgres_with_sslmode_verify_full_is_encrypted_and_checks_the_server(environment, postgres_ca, tmp_path):
    import sqlalchemy.exc
    url = environment["GRIDBUS_DATABASE_URL"]
    encrypted, version = _encryption(f"{url}?sslmode=verify-full&sslrootcert={postgres_ca}")
    assert encrypted and version.startswith("TLSv1.")
    assert _encryption(f"{url}?sslmode=disable")[0] is False  # what pg_stat_ssl says of plaintext
    (tmp_path / "other-ca.crt").write_bytes(CA.create("not the database's CA").cert_pem)
    with pytest.raises(sqlalchemy.exc.OperationalError, match="certificate verify failed"):
        _encryption(f"{url}?sslmode=verify-full&sslrootcert={tmp_path / 'other-ca.crt'}")


# --- a service's nameko process over AMQPS and verify-full ---------------------------------

def test_a_nameko_service_works_over_amqps_and_an_encrypted_database(environment, broker_tls, postgres_ca):
    from services.grid import operations as grid_ops
    from shared.auth import ADMIN, Principal
    from tests.support import EventTap, service_process
    env = {k: v for k, v in broker_tls.items() if k.startswith("GRIDBUS_")}
    env["GRIDBUS_DATABASE_URL"] = f"{environment['GRIDBUS_DATABASE_URL']}?sslmode=verify-full&sslrootcert={postgres_ca}"
    tap = EventTap(environment["GRIDBUS_AMQP_URI"], "grid.member.*")  # an outside subscriber, plaintext
    try:
        # Serving means its health RPC went there and back over AMQPS (tests/support.py dials as it does).
        with service_process(environment, "grid", "nameko", name="grid-nameko-tls", env=env) as proc:
            member = grid_ops.create_member(Principal("tls-test", ADMIN, ("330100",)), "Li Si", "13900002222", "officer")
            # Its outbox relay heard the commit over the encrypted database connection and published over AMQPS.
            tap.drain(until=lambda got: any(e["subject"] == f"members/{member.id}" for e in got), timeout=30)
            assert any(e["subject"] == f"members/{member.id}" for e in tap.received), proc.log()[-2000:]
    finally:
        tap.close()


def test_the_management_api_is_checked_against_the_brokers_ca(certs):
    """https to RabbitMQ's management API trusts GRIDBUS_AMQP_SSL_CA (the broker's certificate's CA)."""
    context = tls.management_verify(settings({"GRIDBUS_AMQP_URI": "amqps://u:p@h/", "GRIDBUS_AMQP_SSL_CA": certs["ca"]}))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [dict(pair[0] for pair in c["subject"])["commonName"] for c in context.get_ca_certs()] == ["test CA"]
    assert tls.management_verify(settings({})) is True


def test_a_probe_dials_127_0_0_1_and_checks_the_services_name(monkeypatch, ca, tmp_path):
    """`gridbus health grpc 127.0.0.1:<port> --server-name grid-grpc`: what compose's and the
    Kubernetes probes run, where the certificate names the service, not the loopback address."""
    from shared.health import check_grpc
    cert, key = ca.issue("grid-grpc", ["grid-grpc", "grid-grpc.gridbus.svc"]).write(tmp_path, "grid-grpc")
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    server, target = _server(monkeypatch, {"GRIDBUS_GRPC_TLS_CERT": str(cert), "GRIDBUS_GRPC_TLS_KEY": str(key)})
    client = settings({"GRIDBUS_GRPC_TLS_CA": str(tmp_path / "ca.crt")})
    try:
        check_grpc(target, 5, client, server_name="grid-grpc")
        with pytest.raises(grpc.RpcError):  # 127.0.0.1 is not a name the certificate has
            check_grpc(target, 5, client)
        with pytest.raises(grpc.RpcError):
            check_grpc(target, 5, client, server_name="incidents-grpc")
    finally:
        server.stop(None)
