"""Settings: every variable typed and checked, and README's configuration table true to them."""
from __future__ import annotations

import re
from dataclasses import fields

import pytest

from services import registry
from shared.config import Settings, env_name, port, settings
from tests.support import ROOT


def _readme_table() -> dict[str, str]:
    """variable -> its default cell, from README's configuration table."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Configuration"):text.index("## Running one service alone")]
    rows = re.findall(r"^\| `(GRIDBUS_\w+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
    return {name: cell.strip() for name, cell in rows}


def _documented_defaults() -> dict[str, str]:
    out = {}
    for f in fields(Settings):
        shown = f.metadata["documented"]
        out[env_name(f.name)] = shown if shown else f"`{f.metadata['default']}`"
    for _, process in registry.processes():
        if process.port:
            out[process.port.setting] = f"`{process.port.default}`"
    return out


def test_the_readme_lists_every_setting_with_its_default():
    assert _readme_table() == _documented_defaults()


def test_the_defaults_are_what_the_table_says():
    s = settings({})
    assert (s.token_ttl_seconds, s.credit_sweep_seconds, s.duplicate_radius_m, s.duplicate_window_hours) == \
        (43200, 60.0, 50.0, 24.0)
    assert (s.dispatch_assign_minutes, s.dispatch_escalation_minutes) == (30.0, 60.0)
    assert (s.token, s.failpoint, s.credit_rules, s.dispatch_calendar, dict(s.open311_api_keys)) == \
        (None, None, None, None, {})
    assert port("GRIDBUS_GRID_GRPC_PORT", 50051, {}) == 50051
    assert s.owner_database_url == s.database_url  # one role, for development
    assert settings({"GRIDBUS_MIGRATION_DATABASE_URL": "postgresql+psycopg://owner@db/gridbus"}).owner_database_url == \
        "postgresql+psycopg://owner@db/gridbus"
    assert s.credit_checkpoint_key[0] == "dev-checkpoint" and len(s.credit_checkpoint_key[1]) == 32
    assert (s.console_http_host, s.grid_grpc_target, s.console_tile_url, s.console_time_zone) == \
        ("127.0.0.1", None, None, "Asia/Shanghai")


def test_values_are_typed():
    s = settings({"GRIDBUS_DUPLICATE_RADIUS_M": "12.5", "GRIDBUS_TOKEN_TTL_SECONDS": "60",
                  "GRIDBUS_OPEN311_API_KEYS": "k-0123456789abcdef=city-app, short=nope,k-fedcba9876543210 = other",
                  "GRIDBUS_CREDIT_RULES": "/etc/gridbus/rules.yaml"})
    assert s.duplicate_radius_m == 12.5 and s.token_ttl_seconds == 60
    assert dict(s.open311_api_keys) == {"k-0123456789abcdef": "city-app", "k-fedcba9876543210": "other"}
    assert s.credit_rules == "/etc/gridbus/rules.yaml"
    s = settings({"GRIDBUS_CONSOLE_TILE_URL": "https://tiles.example.gov.cn/{z}/{x}/{y}.png",
                  "GRIDBUS_DISPATCH_GRPC_TARGET": "dispatch-grpc:50053", "GRIDBUS_CONSOLE_TIME_ZONE": "Asia/Urumqi"})
    assert (s.console_tile_url, s.dispatch_grpc_target, s.console_time_zone) == \
        ("https://tiles.example.gov.cn/{z}/{x}/{y}.png", "dispatch-grpc:50053", "Asia/Urumqi")
    assert port("GRIDBUS_GRID_GRPC_PORT", 50051, {"GRIDBUS_GRID_GRPC_PORT": "6000"}) == 6000


@pytest.mark.parametrize("name, value, words", [
    ("GRIDBUS_DUPLICATE_RADIUS_M", "fifty", "must be a finite number"),
    ("GRIDBUS_DUPLICATE_WINDOW_HOURS", "-1", "above 0"),
    ("GRIDBUS_CREDIT_SWEEP_SECONDS", "nan", "above 0"),
    ("GRIDBUS_DISPATCH_ASSIGN_MINUTES", "0", "above 0"),
    ("GRIDBUS_TOKEN_TTL_SECONDS", "1.5", "whole number"),
    ("GRIDBUS_TOKEN_KEY", "short", "key-id:base64"),
    ("GRIDBUS_TOKEN_KEY", "k1:c2hvcnQ=", "32-byte Ed25519 key, not 5 bytes"),
    ("GRIDBUS_TOKEN_VERIFY_KEYS", "k1:" + "A" * 43 + "=,k2:not base64!", "is not base64"),
    ("GRIDBUS_SIGNIN_LOCK_SECONDS", "0", "above 0"),
    ("GRIDBUS_CREDIT_ID_KEY", "short", "at least 32 bytes"),
    ("GRIDBUS_LOG_LEVEL", "LOUD", "logging level"),
    ("GRIDBUS_CREDIT_CHECKPOINT_KEY", "no-key-id-here", "key-id:base64"),
    ("GRIDBUS_CREDIT_CHECKPOINT_KEY", "k1:c2hvcnQ=", "32-byte Ed25519 key, not 5 bytes"),
    ("GRIDBUS_CREDIT_CHECKPOINT_VERIFY_KEYS", "k1:" + "A" * 43 + "=,k2:not base64!", "is not base64"),
    ("GRIDBUS_PUBLIC_BODY_TIMEOUT_SECONDS", "0", "above 0"),
    ("GRIDBUS_CONSOLE_TIME_ZONE", "Mars/Olympus_Mons", "IANA time zone"),
    ("GRIDBUS_CONSOLE_TILE_URL", "tiles.example.gov.cn/{z}/{x}/{y}.png", "http(s) URL"),
    ("GRIDBUS_CONSOLE_TILE_URL", "https://tiles.example.gov.cn/base.png", "{z}, {x} and {y}"),
])
def test_a_bad_value_is_refused_naming_its_variable(name, value, words):
    with pytest.raises(RuntimeError) as refused:
        settings({name: value})
    assert str(refused.value).startswith(f"{name} must") and words in str(refused.value)


@pytest.mark.parametrize("value", ["http", "70000", "-1"])
def test_a_bad_port_is_refused_naming_its_variable(value):
    with pytest.raises(RuntimeError, match="GRIDBUS_GRID_GRPC_PORT must be a port number"):
        port("GRIDBUS_GRID_GRPC_PORT", 50051, {"GRIDBUS_GRID_GRPC_PORT": value})
