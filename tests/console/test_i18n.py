"""The console's page speaks Chinese first and English second: every label in both, every key
the page asks for present, and the families of labels matching the services' own lists."""
import json
import re
from pathlib import Path

import pytest

from services.console import domain
from services.dispatch.domain import STATUSES as TASK_STATUSES
from services.incidents.domain import ACTIONS as INCIDENT_ACTIONS, FUNNEL, STATUSES
from shared.auth import ROLES
from shared.public_http import HTTP_STATUS
from shared.units import LEVELS

WEB = Path(__file__).resolve().parents[2] / "services" / "console" / "web" / "src"
MESSAGES = {lang: json.loads((WEB / "i18n" / f"{lang}.json").read_text(encoding="utf-8")) for lang in ("zh-CN", "en")}
STATIC_KEY = re.compile(r"""\bt\(\s*['"]([A-Za-z0-9_.]+)['"]""")


def flat(tree: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= flat(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


ZH, EN = flat(MESSAGES["zh-CN"]), flat(MESSAGES["en"])


def test_every_label_exists_in_both_languages_and_says_something():
    assert sorted(ZH) == sorted(EN)
    assert all(v.strip() for v in [*ZH.values(), *EN.values()])
    # Chinese first: the Chinese labels are Chinese.
    assert sum(bool(re.search(r"[\u4e00-\u9fff]", v)) for v in ZH.values()) > 0.9 * len(ZH)


def test_every_key_the_page_names_is_there():
    used = {key for path in WEB.rglob("*") if path.suffix in (".vue", ".js")
            for key in STATIC_KEY.findall(path.read_text(encoding="utf-8"))}
    assert used, "the page names no keys?"
    assert sorted(k for k in used if k not in ZH) == []


def test_placeholders_agree_between_the_languages():
    for key, zh in ZH.items():
        assert sorted(re.findall(r"{(\w+)}", zh)) == sorted(re.findall(r"{(\w+)}", EN[key])), key


def section(name: str) -> set[str]:
    return set(MESSAGES["en"][name])


@pytest.mark.parametrize("name, expected", [
    ("status", set(STATUSES)),
    ("taskStatus", set(TASK_STATUSES)),
    ("actions", set(domain.ACTIONS)),
    ("funnel", set(FUNNEL)),
    ("levels", set(LEVELS)),
    ("events", {"reported", *(a.event for a in INCIDENT_ACTIONS.values())}),
])
def test_each_family_of_labels_matches_the_services_list(name, expected):
    assert section(name) == expected


def test_errors_and_roles_are_all_worded():
    assert set(HTTP_STATUS) | {"UNKNOWN", "INTERNAL"} <= section("errors")
    assert set(ROLES) <= section("roles")


def test_the_pages_list_of_states_is_the_incidents_services():
    js = (WEB / "statuses.js").read_text(encoding="utf-8")
    listed = re.search(r"export const STATUSES = \[([^\]]*)\]", js).group(1)
    assert re.findall(r"'(\w+)'", listed) == list(STATUSES)
    opened = re.search(r"export const OPEN_STATUSES = \[([^\]]*)\]", js).group(1)
    assert set(re.findall(r"'(\w+)'", opened)) == set(domain.QueueFilter.statuses)
