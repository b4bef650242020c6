"""Validates docker-compose.yml and k8s/ offline; exits 1 listing every problem.

- compose: a strict JSON Schema of the Compose features we use (deploy/compose_schema.py),
  then gridbus rules: depends_on targets exist, long-running services have healthchecks,
  every gridbus process gets the settings it needs and is health-checked on its own port, and
  only migrations get the database owner's URL, only credit's nameko the checkpoint signing key.
- k8s: every built-in kind against the Kubernetes OpenAPI schemas bundled in
  kubernetes-validate, strict (unknown fields are errors); the operators' custom resources
  (RabbitmqCluster, CloudNativePG Cluster, the topology operator's Exchange, Binding,
  Federation and Policy, cert-manager's Issuer and Certificate) by their required fields, as their schemas are not
  bundled; then gridbus rules: Services select a Deployment and target a port it has, every
  ConfigMap/Secret reference resolves, probes, resources and a non-root security context, and
  the owner's URL and the signing key reach only the containers that need them.
- both: every gridbus process in compose has a Deployment of the same name; every process in
  services/registry.py is in both, running its module (Kubernetes on the port its setting
  gives) as its service's own broker user (shared/broker_users.py), and neither runs a gridbus
  process the registry does not list.

Run: python -m deploy.validate [--root DIR] (make validate-deploy)."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

from deploy.compose_schema import COMPOSE
from services import registry
from shared import broker_users

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.31"
REQUIRED_ENV = ("GRIDBUS_AMQP_URI", "GRIDBUS_DATABASE_URL", "GRIDBUS_TOKEN_KEY")
# Settings only some processes may hold (docs/security.md), and what their command must run:
# the database owner's URL is for migrations, the checkpoint signing key for credit's nameko.
RESTRICTED_ENV = {"GRIDBUS_MIGRATION_DATABASE_URL": "gridbus migrate",
                  "GRIDBUS_CREDIT_CHECKPOINT_KEY": "services.credit.service"}
CONFIG_MAP = "gridbus-config"
# Each API server's port setting, by process name.
PORT_ENV = {p.name: p.port.setting for _, p in registry.processes() if p.port}
CUSTOM_RESOURCES = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): ["replicas"],
    ("postgresql.cnpg.io/v1", "Cluster"): ["instances", "imageName", "storage", "bootstrap"],
    # The Messaging Topology Operator's: three levels' exchange, binding, federation links, policy.
    ("rabbitmq.com/v1beta1", "Exchange"): ["name", "rabbitmqClusterReference"],
    ("rabbitmq.com/v1beta1", "Binding"): ["source", "destination", "rabbitmqClusterReference"],
    ("rabbitmq.com/v1beta1", "Federation"): ["name", "uriSecret", "exchange", "rabbitmqClusterReference"],
    ("rabbitmq.com/v1beta1", "Policy"): ["name", "pattern", "definition", "rabbitmqClusterReference"],
    # cert-manager's: the CA issuer and the certificates of k8s/tls.yaml.
    ("cert-manager.io/v1", "Issuer"): ["ca"],
    ("cert-manager.io/v1", "Certificate"): ["secretName", "issuerRef"],
}


# --- compose -------------------------------------------------------------------------------

def _env(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def _is_gridbus(service: dict) -> bool:
    return "gridbus" in str(service.get("image", "")) or service.get("build") in (".", "./")


def check_compose(doc) -> list[str]:
    errors = [f"compose: {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
              for e in sorted(jsonschema.Draft202012Validator(COMPOSE).iter_errors(doc), key=lambda e: list(e.path))]
    if errors or not isinstance(doc, dict):
        return errors
    services = doc["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for target in (deps if isinstance(deps, list) else deps.keys()):
            if target not in services:
                errors.append(f"compose: {name}: depends_on names {target!r}, which is not a service")
        long_running = svc.get("restart", "no") != "no"
        if long_running and not svc.get("healthcheck"):
            errors.append(f"compose: {name}: a long-running service needs a healthcheck")
        if _is_gridbus(svc):
            env = _env(svc)
            for key in REQUIRED_ENV:
                if not env.get(key):
                    errors.append(f"compose: {name}: environment lacks {key}")
            errors += [f"compose: {name}: only what runs `{marker}` may have {key}"
                       for key, marker in RESTRICTED_ENV.items() if key in env and marker not in _command(svc)]
            if name in PORT_ENV:
                port = str(env.get(PORT_ENV[name], ""))
                test = " ".join(map(str, (svc.get("healthcheck") or {}).get("test", [])))
                if not port or port not in test:
                    errors.append(f"compose: {name}: its healthcheck must probe its own port {PORT_ENV[name]}={port or '?'}")
    return errors


# --- kubernetes ----------------------------------------------------------------------------

def load_kustomization(directory: Path) -> list[tuple[str, dict]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    out = []
    for name in kustomization.get("resources", []):
        path = directory / name
        if not path.exists():
            raise FileNotFoundError(f"k8s: kustomization lists {name}, which does not exist")
        out += [(name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return out


def _where(name: str, res: dict) -> str:
    return f"k8s: {name}: {res.get('kind')}/{(res.get('metadata') or {}).get('name')}"


def _pod_spec(res: dict) -> dict | None:
    if res.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return ((res.get("spec") or {}).get("template") or {}).get("spec")
    return None


def check_k8s(resources: list[tuple[str, dict]], version: str = KUBERNETES_VERSION) -> list[str]:
    errors = []
    for name, res in resources:
        key = (res.get("apiVersion"), res.get("kind"))
        if key in CUSTOM_RESOURCES:
            if not (res.get("metadata") or {}).get("name"):
                errors.append(f"{_where(name, res)}: metadata.name is required")
            for field in CUSTOM_RESOURCES[key]:
                if field not in (res.get("spec") or {}):
                    errors.append(f"{_where(name, res)}: spec.{field} is required")
            continue
        try:
            kubernetes_validate.validate(res, version, strict=True)
        except kubernetes_validate.ValidationError:
            # validate() stops at the first error; list them all, typos first.
            for e in _all_schema_errors(res, version):
                errors.append(f"{_where(name, res)}: {'.'.join(map(str, e.absolute_path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{_where(name, res)}: no schema for {key[0]} {key[1]} in Kubernetes {version}")
    if errors:
        return errors
    return errors + _gridbus_rules(resources)


def _all_schema_errors(res: dict, version: str) -> list:
    """Every schema error of one resource, with the schemas kubernetes-validate bundles."""
    import re

    from kubernetes_validate import utils
    from referencing import Registry, Resource

    full = [v for v in utils.all_versions() if utils.major_minor(v) <= version][-1]
    schema_dir = f"kubernetes-json-schema/v{full}-local-strict"
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", res["apiVersion"])
    schema = utils.schema_contents(f"{schema_dir}/{res['kind'].lower()}-{api}.json", version)
    definitions = utils.schema_contents(f"{schema_dir}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    found = list(validator.iter_errors(res))
    return sorted(found, key=lambda e: (e.validator != "additionalProperties", list(map(str, e.absolute_path))))


def _gridbus_rules(resources: list[tuple[str, dict]]) -> list[str]:
    errors = []
    config_keys: dict[tuple[str, str], set[str]] = {}
    for _, res in resources:
        if res["kind"] in ("ConfigMap", "Secret"):
            keys = set((res.get("data") or {})) | set((res.get("stringData") or {}))
            config_keys[(res["kind"], res["metadata"]["name"])] = keys
    workloads = [(n, r) for n, r in resources if _pod_spec(r) is not None]
    for name, res in workloads:
        spec = _pod_spec(res)
        where = _where(name, res)
        if not (spec.get("securityContext") or {}).get("runAsNonRoot"):
            errors.append(f"{where}: pods must set securityContext.runAsNonRoot")
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            given = {e["name"] for e in c.get("env", [])}
            for ref in c.get("envFrom", []):
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    given |= config_keys.get((kind, ref[field]["name"]), set()) if field in ref else set()
            errors += [f"{where}: {c['name']} gets {key}, but only what runs `{marker}` may"
                       for key, marker in RESTRICTED_ENV.items() if key in given and marker not in _command(c)]
            for ref in c.get("envFrom", []):
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if field in ref and (kind, ref[field]["name"]) not in config_keys:
                        errors.append(f"{where}: {c['name']} reads {kind} {ref[field]['name']}, which is not defined")
            for env in c.get("env", []):
                source = (env.get("valueFrom") or {})
                for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    ref = source.get(field)
                    if ref and ref["key"] not in config_keys.get((kind, ref["name"]), set()):
                        errors.append(f"{where}: {c['name']} env {env['name']} needs key {ref['key']} "
                                      f"of {kind} {ref['name']}, which is not there")
            resources_ = c.get("resources") or {}
            if not resources_.get("requests") or not resources_.get("limits"):
                errors.append(f"{where}: {c['name']} needs resource requests and limits")
            if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False:
                errors.append(f"{where}: {c['name']} must set allowPrivilegeEscalation: false")
        if res["kind"] == "Deployment":
            for c in spec.get("containers", []):
                if not c.get("readinessProbe") or not c.get("livenessProbe"):
                    errors.append(f"{where}: {c['name']} needs readiness and liveness probes")
    for name, res in resources:
        if res["kind"] != "Service":
            continue
        selector = res["spec"].get("selector") or {}
        matched = [r for _, r in workloads if r["kind"] == "Deployment" and selector and
                   selector.items() <= ((r["spec"]["template"].get("metadata") or {}).get("labels") or {}).items()]
        if not matched:
            errors.append(f"{_where(name, res)}: selects no Deployment")
            continue
        ports = [p for r in matched for c in _pod_spec(r)["containers"] for p in c.get("ports", [])]
        for port in res["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            if not any(target in (p.get("name"), p["containerPort"]) for p in ports):
                errors.append(f"{_where(name, res)}: targetPort {target} matches no container port of "
                              f"{', '.join(r['metadata']['name'] for r in matched)}")
    return errors + _network_rules(workloads, resources) + _autoscaling_rules(workloads, resources)


def _labels(res: dict) -> dict:
    return (res["spec"]["template"].get("metadata") or {}).get("labels") or {}


def _network_rules(workloads: list[tuple[str, dict]], resources: list[tuple[str, dict]]) -> list[str]:
    """Every gridbus Deployment is behind an ingress policy, and every named port a policy opens
    is a port some pod it selects has (a typo would silently open nothing)."""
    errors = []
    policies = [(n, r) for n, r in resources if r["kind"] == "NetworkPolicy"]
    deployments = [(n, r) for n, r in workloads if r["kind"] == "Deployment"]

    def selected(policy: dict) -> list[dict]:
        wanted = (policy["spec"].get("podSelector") or {}).get("matchLabels") or {}
        return [r for _, r in deployments if wanted.items() <= _labels(r).items()]
    for name, res in deployments:
        if not any(res in selected(p) and "Ingress" in p["spec"].get("policyTypes", []) for _, p in policies):
            errors.append(f"{_where(name, res)}: no NetworkPolicy restricts ingress to it")
    for name, policy in policies:
        pods = selected(policy)
        named = {port.get("name") for r in pods for c in _pod_spec(r)["containers"] for port in c.get("ports", [])}
        for rule in policy["spec"].get("ingress") or []:
            for port in rule.get("ports") or []:
                if isinstance(port.get("port"), str) and port["port"] not in named:
                    errors.append(f"{_where(name, policy)}: opens port {port['port']!r}, which no selected pod names")
    return errors


def _autoscaling_rules(workloads: list[tuple[str, dict]], resources: list[tuple[str, dict]]) -> list[str]:
    errors = []
    deployments = {r["metadata"]["name"]: r for _, r in workloads if r["kind"] == "Deployment"}
    for name, hpa in resources:
        if hpa["kind"] != "HorizontalPodAutoscaler":
            continue
        where, spec = _where(name, hpa), hpa["spec"]
        target = deployments.get(spec["scaleTargetRef"]["name"])
        if spec["scaleTargetRef"]["kind"] != "Deployment" or target is None:
            errors.append(f"{where}: scales {spec['scaleTargetRef']['name']}, which is no Deployment here")
            continue
        if "replicas" in target["spec"]:
            errors.append(f"{where}: {target['metadata']['name']} sets replicas, which every apply would reset")
        if spec.get("minReplicas", 1) > spec["maxReplicas"]:
            errors.append(f"{where}: minReplicas is above maxReplicas")
        for metric in spec.get("metrics", []):
            resource = (metric.get("resource") or {}).get("name")
            if resource and not all(((c.get("resources") or {}).get("requests") or {}).get(resource)
                                    for c in _pod_spec(target)["containers"]):
                errors.append(f"{where}: scales on {resource} utilization, but a container requests no {resource}")
    return errors


# --- both ----------------------------------------------------------------------------------

def check_parity(compose: dict, resources: list[tuple[str, dict]]) -> list[str]:
    deployments = {r["metadata"]["name"] for _, r in resources if r.get("kind") == "Deployment"}
    return [f"parity: compose service {name} has no Deployment named {name} in k8s/"
            for name, svc in (compose.get("services") or {}).items()
            if _is_gridbus(svc) and svc.get("restart", "no") != "no" and name not in deployments]


def _command(container_or_service: dict) -> str:
    command = container_or_service.get("command") or []
    return command if isinstance(command, str) else " ".join(map(str, command))


def check_registry(compose: dict, resources: list[tuple[str, dict]]) -> list[str]:
    """Compose and Kubernetes run exactly the registry's processes, each its own module."""
    errors = []
    services = {name: svc for name, svc in (compose.get("services") or {}).items()
                if _is_gridbus(svc) and svc.get("restart", "no") != "no"}
    deployments = {r["metadata"]["name"]: r for _, r in resources if r.get("kind") == "Deployment"}
    config = next((r.get("data") or {} for _, r in resources
                   if r.get("kind") == "ConfigMap" and r["metadata"]["name"] == CONFIG_MAP), {})
    for service, process in registry.processes():
        user = broker_users.user_name(service.name, broker_users.PREFIX)
        svc = services.get(process.name)
        if svc is None:
            errors.append(f"registry: {process.name} has no service in docker-compose.yml")
        elif process.module not in _command(svc):
            errors.append(f"compose: {process.name}: its command does not run {process.module}")
        elif not re.match(rf"amqps?://{re.escape(user)}:", str(_env(svc).get("GRIDBUS_AMQP_URI", ""))):
            errors.append(f"compose: {process.name}: GRIDBUS_AMQP_URI must connect as its service's broker user {user}")
        deployment = deployments.get(process.name)
        if deployment is None:
            errors.append(f"registry: {process.name} has no Deployment in k8s/")
            continue
        containers = _pod_spec(deployment)["containers"]
        if not any(process.module in _command(c) for c in containers):
            errors.append(f"k8s: Deployment/{process.name}: no container runs {process.module}")
        own = f"gridbus-amqp-{service.name}"
        if not all(any((ref.get("secretRef") or {}).get("name") == own for ref in c.get("envFrom", []))
                   for c in containers):
            errors.append(f"k8s: Deployment/{process.name}: its containers must read Secret {own} "
                          f"(GRIDBUS_AMQP_URI of the broker user {user})")
        if process.port:
            port = int(config.get(process.port.setting, process.port.default))
            if not any(p["containerPort"] == port for c in containers for p in c.get("ports", [])):
                errors.append(f"k8s: Deployment/{process.name}: listens on {process.port.setting}={port}, "
                              f"which no container port exposes")
    known = {p.name for _, p in registry.processes()}
    errors += [f"compose: {name} is no process in services/registry.py" for name in services if name not in known]
    errors += [f"k8s: Deployment/{name} is no process in services/registry.py" for name in deployments
               if name not in known]
    return errors


def validate(root: Path = ROOT) -> list[str]:
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    errors = check_compose(compose)
    try:
        resources = load_kustomization(root / "k8s")
    except FileNotFoundError as exc:
        return errors + [str(exc)]
    errors += check_k8s(resources)
    if not errors:
        errors += check_parity(compose, resources) + check_registry(compose, resources)
    return errors


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    errors = validate(args.root)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        raise SystemExit(1)
    print("docker-compose.yml and k8s/ are valid")


if __name__ == "__main__":
    main()
