"""services/registry.py against what it describes: the packages in services/, their modules and
migrations, docker-compose.yml and k8s/."""
from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect

import pytest
import yaml

from deploy import validate as v
from services import registry


def test_every_service_package_is_registered_and_nothing_else():
    packages = {p.name for p in registry.SERVICES_DIR.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(registry.BY_NAME)


@pytest.mark.parametrize("service", registry.SERVICES, ids=lambda s: s.name)
def test_each_entry_names_modules_and_folders_that_exist(service):
    for process in service.processes:
        assert importlib.util.find_spec(process.module), process
    assert (service.schema is None) == (service.migrations is None)
    if service.schema:
        assert service.schema == service.name
        assert (service.migrations / "env.py").exists() and list((service.migrations / "versions").glob("0001_*.py"))
    else:
        assert not (registry.SERVICES_DIR / service.name / "migrations").exists()
    if service.cli:
        register = importlib.import_module(service.cli).register
        assert list(inspect.signature(register).parameters) == ["sub"]
    if service.nameko:
        module = importlib.import_module(service.nameko)
        names = {cls.name for _, cls in inspect.getmembers(module, inspect.isclass)
                 if cls.__module__ == module.__name__ and isinstance(getattr(cls, "name", None), str)}
        assert names == {service.name}  # `gridbus health nameko <service>` reaches it by this name
    assert (service.port is not None) == bool(service.grpc or service.http)
    assert service.http_port is None or (service.grpc and service.http)  # a second server's own port


def test_ports_and_settings_are_unique():
    ports = [p for s in registry.SERVICES for p in (s.port, s.http_port) if p]
    assert len({p.default for p in ports}) == len({p.setting for p in ports}) == len(ports)


@pytest.fixture(scope="module")
def deployment():
    return yaml.safe_load((v.ROOT / "docker-compose.yml").read_text()), v.load_kustomization(v.ROOT / "k8s")


def test_compose_and_k8s_run_exactly_the_registered_processes(deployment):
    compose, resources = deployment
    assert v.check_registry(compose, resources) == []


def test_a_process_missing_from_compose_or_k8s_is_caught(deployment):
    compose, resources = copy.deepcopy(deployment)
    del compose["services"]["credit-grpc"]
    resources = [(n, r) for n, r in resources if not (r["kind"] == "Deployment" and r["metadata"]["name"] == "open311-http")]
    assert v.check_registry(compose, resources) == ["registry: credit-grpc has no service in docker-compose.yml",
                                                    "registry: open311-http has no Deployment in k8s/"]


def test_a_process_running_the_wrong_module_or_port_is_caught(deployment):
    compose, resources = copy.deepcopy(deployment)
    compose["services"]["grid-grpc"]["command"] = ["python", "-m", "services.grid.grpc"]
    config = next(r for _, r in resources if r["kind"] == "ConfigMap" and r["metadata"]["name"] == "gridbus-config")
    config["data"]["GRIDBUS_DISPATCH_GRPC_PORT"] = "50099"
    assert v.check_registry(compose, resources) == [
        "compose: grid-grpc: its command does not run services.grid.grpc_server",
        "k8s: Deployment/dispatch-grpc: listens on GRIDBUS_DISPATCH_GRPC_PORT=50099, which no container port exposes"]


def test_an_unregistered_process_is_caught(deployment):
    compose, resources = copy.deepcopy(deployment)
    compose["services"]["audit-nameko"] = compose["services"]["grid-nameko"]
    assert v.check_registry(compose, resources) == ["compose: audit-nameko is no process in services/registry.py"]


def test_nameko_workers_are_each_services_default_unless_its_setting_moves_them():
    dispatch, credit = registry.BY_NAME["dispatch"], registry.BY_NAME["credit"]
    assert dispatch.nameko_workers({}) == 16 and credit.nameko_workers({}) == 4
    assert registry.BY_NAME["grid"].nameko_workers({}) == registry.DEFAULT_WORKERS
    assert dispatch.nameko_workers({"GRIDBUS_DISPATCH_NAMEKO_WORKERS": "3"}) == 3
    for bad in ("0", str(registry.MAX_WORKERS + 1), "many"):
        with pytest.raises(RuntimeError, match="GRIDBUS_DISPATCH_NAMEKO_WORKERS"):
            dispatch.nameko_workers({"GRIDBUS_DISPATCH_NAMEKO_WORKERS": bad})


def test_every_worker_finds_a_connection_in_the_pool_beside_the_relay_and_listeners():
    from sqlalchemy.pool import QueuePool

    from shared.db import engine
    pool = engine("postgresql+psycopg://u@localhost/unused").pool  # not connected: create_engine is lazy
    assert isinstance(pool, QueuePool)
    assert pool.size() + pool._max_overflow >= registry.MAX_WORKERS + 4
    assert all(s.workers <= registry.MAX_WORKERS for s in registry.SERVICES)


def test_nameko_config_gives_the_workers_to_nameko_which_prefetches_as_many():
    from nameko.constants import MAX_WORKERS_CONFIG_KEY

    from shared.config import settings
    from shared.nameko_support import nameko_config
    assert nameko_config(settings({}), 16)[MAX_WORKERS_CONFIG_KEY] == 16
