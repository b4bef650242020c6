"""The deployment files validate offline, and the validator catches what it claims to."""
from __future__ import annotations

import copy

import pytest
import yaml

from deploy import validate as v


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((v.ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def resources():
    return v.load_kustomization(v.ROOT / "k8s")


def find(resources, kind, name):
    for i, (_, res) in enumerate(resources):
        if res["kind"] == kind and res["metadata"]["name"] == name:
            return i
    raise KeyError((kind, name))


def test_the_real_files_are_valid():
    assert v.validate() == []


def test_every_service_process_is_deployed(compose, resources):
    deployments = {r["metadata"]["name"] for _, r in resources if r["kind"] == "Deployment"}
    assert {"grid-nameko", "grid-grpc", "incidents-nameko", "incidents-grpc", "dispatch-nameko", "dispatch-grpc",
            "credit-nameko", "credit-grpc", "subscriptions-grpc", "open311-http", "console-http"} <= deployments
    assert v.check_parity(compose, resources) == []


def mutated(resources, kind, name, change):
    out = copy.deepcopy(resources)
    i = find(out, kind, name)
    change(out[i][1])
    return out


def test_a_typo_in_a_deployment_is_caught(resources):
    def typo(d):
        spec = d["spec"]["template"]["spec"]
        spec["contianers"] = spec.pop("containers")
    errors = v.check_k8s(mutated(resources, "Deployment", "grid-grpc", typo))
    assert any("grid-grpc" in e and "contianers" in e for e in errors), errors


def test_a_wrong_type_is_caught(resources):
    errors = v.check_k8s(mutated(resources, "Deployment", "incidents-grpc",
                                 lambda d: d["spec"].__setitem__("replicas", "three")))
    assert any("incidents-grpc" in e and "replicas" in e for e in errors), errors


def test_a_service_port_with_no_container_port_is_caught(resources):
    errors = v.check_k8s(mutated(resources, "Service", "grid-grpc",
                                 lambda s: s["spec"]["ports"][0].__setitem__("targetPort", "grcp")))
    assert errors == ["k8s: grid.yaml: Service/grid-grpc: targetPort grcp matches no container port of grid-grpc"]


def test_a_missing_secret_is_caught(resources):
    def other_secret(d):
        d["spec"]["template"]["spec"]["containers"][0]["envFrom"][1]["secretRef"]["name"] = "gridbus-secret"
    errors = v.check_k8s(mutated(resources, "Deployment", "incidents-nameko", other_secret))
    assert any("Secret gridbus-secret, which is not defined" in e for e in errors), errors


def test_a_container_without_limits_or_probes_is_caught(resources):
    def bare(d):
        c = d["spec"]["template"]["spec"]["containers"][0]
        del c["resources"]["limits"], c["livenessProbe"]
    errors = v.check_k8s(mutated(resources, "Deployment", "open311-http", bare))
    assert any("requests and limits" in e for e in errors) and any("liveness" in e for e in errors), errors


def test_network_policies_cover_every_deployment_and_open_only_real_ports(resources):
    errors = v.check_k8s(mutated(resources, "NetworkPolicy", "gridbus-api-ingress",
                                 lambda p: p["spec"]["ingress"][0]["ports"][0].__setitem__("port", "gprc")))
    assert errors == ["k8s: network-policies.yaml: NetworkPolicy/gridbus-api-ingress: opens port 'gprc', "
                      "which no selected pod names"]
    def relabel(d):
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] = "something-else"
    errors = v.check_k8s(mutated(resources, "Deployment", "credit-nameko", relabel))
    assert "k8s: credit.yaml: Deployment/credit-nameko: no NetworkPolicy restricts ingress to it" in errors, errors


def test_autoscalers_own_their_replicas(resources):
    errors = v.check_k8s(mutated(resources, "Deployment", "incidents-grpc",
                                 lambda d: d["spec"].__setitem__("replicas", 3)))
    assert errors == ["k8s: autoscaling.yaml: HorizontalPodAutoscaler/incidents-grpc: incidents-grpc sets replicas, "
                      "which every apply would reset"]
    errors = v.check_k8s(mutated(resources, "HorizontalPodAutoscaler", "grid-grpc",
                                 lambda h: h["spec"].__setitem__("minReplicas", 9)))
    assert errors == ["k8s: autoscaling.yaml: HorizontalPodAutoscaler/grid-grpc: minReplicas is above maxReplicas"]


def test_a_custom_resource_missing_a_required_field_is_caught(resources):
    errors = v.check_k8s(mutated(resources, "Cluster", "gridbus-db", lambda c: c["spec"].pop("instances")))
    assert any("spec.instances is required" in e for e in errors), errors


def test_compose_typos_types_and_dangling_dependencies_are_caught(compose):
    bad = copy.deepcopy(compose)
    bad["services"]["grid-grpc"]["healtcheck"] = bad["services"]["grid-grpc"].pop("healthcheck")
    bad["services"]["incidents-grpc"]["restart"] = "sometimes"
    errors = v.check_compose(bad)
    assert any("grid-grpc" in e and "healtcheck" in e for e in errors), errors
    assert any("incidents-grpc.restart" in e for e in errors), errors
    bad = copy.deepcopy(compose)
    bad["services"]["grid-nameko"]["depends_on"] = {"rabbit": {"condition": "service_healthy"}}
    assert v.check_compose(bad) == ["compose: grid-nameko: depends_on names 'rabbit', which is not a service"]


def test_compose_gridbus_rules(compose):
    bad = copy.deepcopy(compose)
    del bad["services"]["incidents-grpc"]["environment"]["GRIDBUS_TOKEN_KEY"]
    bad["services"]["grid-grpc"]["healthcheck"]["test"] = ["CMD", "gridbus", "health", "grpc", "127.0.0.1:9999"]
    errors = v.check_compose(bad)
    assert "compose: incidents-grpc: environment lacks GRIDBUS_TOKEN_KEY" in errors
    assert any("grid-grpc: its healthcheck must probe its own port" in e for e in errors), errors


def test_parity_between_compose_and_k8s(compose, resources):
    extra = copy.deepcopy(compose)
    extra["services"]["reports-worker"] = copy.deepcopy(extra["services"]["grid-nameko"])
    assert v.check_parity(extra, resources) == [
        "parity: compose service reports-worker has no Deployment named reports-worker in k8s/"]


def test_the_owner_url_and_the_signing_key_reach_only_who_needs_them(compose, resources):
    """Only migrations may hold the database owner's URL, only credit's nameko the key that signs
    the chain's checkpoints (docs/security.md)."""
    def leak(d):
        d["spec"]["template"]["spec"]["containers"][0]["envFrom"].append({"secretRef": {"name": "gridbus-migration"}})
    errors = v.check_k8s(mutated(resources, "Deployment", "open311-http", leak))
    assert any("open311-http" in e and "GRIDBUS_MIGRATION_DATABASE_URL" in e for e in errors), errors

    def signer(d):
        d["spec"]["template"]["spec"]["containers"][0]["envFrom"].append(
            {"secretRef": {"name": "gridbus-credit-checkpoint-key"}})
    errors = v.check_k8s(mutated(resources, "Deployment", "credit-grpc", signer))
    assert any("credit-grpc" in e and "GRIDBUS_CREDIT_CHECKPOINT_KEY" in e for e in errors), errors

    leaky = copy.deepcopy(compose)
    leaky["services"]["grid-grpc"]["environment"]["GRIDBUS_MIGRATION_DATABASE_URL"] = "postgresql://owner@db/gridbus"
    errors = v.check_compose(leaky)
    assert any("grid-grpc" in e and "GRIDBUS_MIGRATION_DATABASE_URL" in e for e in errors), errors
    migrate_env = compose["services"]["migrate"]["environment"]
    assert "GRIDBUS_MIGRATION_DATABASE_URL" in migrate_env
    assert "GRIDBUS_CREDIT_CHECKPOINT_KEY" in compose["services"]["credit-nameko"]["environment"]


def test_every_link_is_tls_in_both(compose, resources):
    """Every gridbus container has the certificates' volume; gRPC servers have their own certificate
    and are probed over TLS under their own name; the broker and the database serve TLS only."""
    certificates = {r["metadata"]["name"]: r for _, r in resources if r["kind"] == "Certificate"}
    for _, res in resources:
        spec = v._pod_spec(res)
        if spec is None:
            continue
        name = res["metadata"]["name"]
        for c in spec.get("initContainers", []) + spec["containers"]:
            assert any(m["name"] == "tls" and m["mountPath"] == "/etc/gridbus/tls" for m in c.get("volumeMounts", [])), \
                (name, c["name"])
        sources = [s["secret"]["name"] for vol in spec["volumes"] if vol["name"] == "tls"
                   for s in vol["projected"]["sources"]]
        assert {"gridbus-db-ca", "gridbus-rabbitmq-tls"} <= set(sources), name
        if name.endswith("-grpc"):
            assert f"{name}-tls" in sources and name in certificates[f"{name}-tls"]["spec"]["dnsNames"]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                command = spec["containers"][0][probe]["exec"]["command"]
                assert command[:3] == ["gridbus", "health", "grpc"] and command[command.index("--server-name") + 1] == name
    broker = next(r for _, r in resources if r["kind"] == "RabbitmqCluster")
    assert broker["spec"]["tls"]["disableNonTLSListeners"] is True
    env = compose["x-gridbus-env"]
    assert "sslmode=verify-full" in env["GRIDBUS_DATABASE_URL"]
    broker_uris = [value for svc in compose["services"].values() for key, value in (svc.get("environment") or {}).items()
                   if key.startswith("GRIDBUS_AMQP_URI")]
    assert broker_uris and all(uri.startswith("amqps://") for uri in broker_uris)
    assert "-c ssl=on" in " ".join(compose["services"]["postgis"]["command"])
    for name, svc in compose["services"].items():
        if name.endswith("-grpc"):
            assert svc["healthcheck"]["test"][-2:] == ["--server-name", name], name


def test_each_process_connects_as_its_own_broker_user(compose, resources):
    """Compose gives each process its service's broker user; Kubernetes its gridbus-amqp-<service>
    Secret; the Job that makes the users knows every one of them (shared/broker_users.py)."""
    from shared import broker_users
    shared_user = copy.deepcopy(compose)
    shared_user["services"]["dispatch-grpc"]["environment"]["GRIDBUS_AMQP_URI"] = \
        compose["services"]["incidents-grpc"]["environment"]["GRIDBUS_AMQP_URI"]
    assert any("dispatch-grpc: GRIDBUS_AMQP_URI must connect as its service's broker user gridbus-dispatch" in e
               for e in v.check_registry(shared_user, resources))

    def borrow(d):
        for ref in d["spec"]["template"]["spec"]["containers"][0]["envFrom"]:
            if ref.get("secretRef", {}).get("name") == "gridbus-amqp-credit":
                ref["secretRef"]["name"] = "gridbus-amqp-incidents"
    errors = v.check_registry(compose, mutated(resources, "Deployment", "credit-nameko", borrow))
    assert any("credit-nameko" in e and "gridbus-amqp-credit" in e for e in errors), errors

    job = next(r for _, r in resources if r["kind"] == "Job" and r["metadata"]["name"] == "gridbus-broker-users")
    container = job["spec"]["template"]["spec"]["containers"][0]
    given = {e["name"] for e in container["env"]}
    assert given == {broker_users.env_name(s) for s in (*broker_users.SERVICES, broker_users.LINK)}
    assert container["command"] == ["gridbus", "broker", "users"]
    assert "gridbus broker users" in v._command(compose["services"]["migrate"])
    assert given <= set(compose["services"]["migrate"]["environment"])


def test_only_sensors_grpc_and_the_users_job_hold_the_brokers_management_url(compose, resources):
    """Registering a device makes its broker user (services/sensors/broker.py): sensors-grpc needs
    the administrator's management URL, and no other long-running process may hold it."""
    holders = {name for name, svc in compose["services"].items()
               if "GRIDBUS_BROKER_MANAGEMENT_URL" in (svc.get("environment") or {})}
    assert holders == {"migrate", "sensors-grpc"}

    def management_env(container):
        return [e for e in container.get("env", []) if e["name"] == "GRIDBUS_BROKER_MANAGEMENT_URL"]

    deployments = {res["metadata"]["name"]: res for _, res in resources if res["kind"] == "Deployment"}
    holders = {name for name, d in deployments.items()
               if any(management_env(c) for c in d["spec"]["template"]["spec"]["containers"])
               or any(ref.get("secretRef", {}).get("name") == "gridbus-broker-admin"
                      for c in d["spec"]["template"]["spec"]["containers"] for ref in c.get("envFrom", []))}
    assert holders == {"sensors-grpc"}
    (ref,) = [e for c in deployments["sensors-grpc"]["spec"]["template"]["spec"]["containers"] for e in management_env(c)]
    assert ref["valueFrom"]["secretKeyRef"] == {"name": "gridbus-broker-admin", "key": "GRIDBUS_BROKER_MANAGEMENT_URL"}
