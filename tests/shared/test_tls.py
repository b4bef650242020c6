"""TLS on every link, with certificates each test makes (shared/pki.py): gRPC with server TLS and
with clients' certificates required (mutual TLS), certificates rotated without a restart; the
settings that cannot work, named."""
from __future__ import annotations

import os

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
