"""A JSON Schema for the part of the Compose Specification gridbus uses, strict: an unknown or
misspelt key is an error (our own subset, written from https://compose-spec.io; Docker is not
available offline to run `docker compose config`)."""
from __future__ import annotations

_DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(us|ms|s|m|h))+$"}
_STR_OR_LIST = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
_EXTENSIONS = {"^x-": {}}
_ENV = {"oneOf": [
    {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
    {"type": "array", "items": {"type": "string"}},
]}

HEALTHCHECK = {
    "type": "object",
    "properties": {
        "test": _STR_OR_LIST, "interval": _DURATION, "timeout": _DURATION, "retries": {"type": "integer", "minimum": 0},
        "start_period": _DURATION, "start_interval": _DURATION, "disable": {"type": "boolean"},
    },
    "additionalProperties": False,
    "patternProperties": _EXTENSIONS,
}

DEPENDS_ON = {"oneOf": [
    {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    {"type": "object", "additionalProperties": {
        "type": "object",
        "properties": {"condition": {"enum": ["service_started", "service_healthy", "service_completed_successfully"]},
                       "restart": {"type": "boolean"}, "required": {"type": "boolean"}},
        "required": ["condition"], "additionalProperties": False}},
]}

SERVICE = {
    "type": "object",
    "properties": {
        "image": {"type": "string"}, "build": {"oneOf": [{"type": "string"}, {"type": "object"}]},
        "command": _STR_OR_LIST, "entrypoint": _STR_OR_LIST, "environment": _ENV, "env_file": _STR_OR_LIST,
        "ports": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "object"}]}},
        "volumes": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object"}]}},
        "depends_on": DEPENDS_ON, "healthcheck": HEALTHCHECK,
        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
        "hostname": {"type": "string"}, "container_name": {"type": "string"}, "user": {"type": "string"},
        "working_dir": {"type": "string"}, "read_only": {"type": "boolean"}, "init": {"type": "boolean"},
        "cap_drop": {"type": "array", "items": {"type": "string"}}, "security_opt": {"type": "array"},
        "labels": _ENV, "networks": {"oneOf": [{"type": "array"}, {"type": "object"}]}, "deploy": {"type": "object"},
        "logging": {"type": "object"}, "stop_grace_period": _DURATION, "profiles": {"type": "array"},
        "tmpfs": _STR_OR_LIST, "extra_hosts": {"oneOf": [{"type": "array"}, {"type": "object"}]},
        "ulimits": {"type": "object"}, "mem_limit": {"type": ["string", "integer"]}, "cpus": {"type": ["string", "number"]},
    },
    "additionalProperties": False,
    "patternProperties": _EXTENSIONS,
    "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
}

COMPOSE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "version": {"type": "string"},
        "services": {"type": "object", "minProperties": 1, "additionalProperties": SERVICE},
        "volumes": {"type": "object"}, "networks": {"type": "object"}, "secrets": {"type": "object"},
        "configs": {"type": "object"},
    },
    "required": ["services"],
    "additionalProperties": False,
    "patternProperties": _EXTENSIONS,
}
