"""The officer's app speaks Chinese first and English second: every label in both, every key the
app names present, its states the incidents service's, its error words every status the server
sends."""
import json
import re
from pathlib import Path

from services.console.officer_domain import LISTS
from services.incidents.domain import STATUSES
from shared.public_http import HTTP_STATUS
from tests.console.test_i18n import STATIC_KEY, flat

APP = Path(__file__).resolve().parents[2] / "services" / "console" / "web" / "officer"
MESSAGES = {lang: json.loads((APP / "i18n" / f"{lang}.json").read_text(encoding="utf-8")) for lang in ("zh-CN", "en")}
ZH, EN = flat(MESSAGES["zh-CN"]), flat(MESSAGES["en"])
# Keys the app builds from data: `t(\`status.${...}\`)`, `t(\`day.lists.${name}\`)`, ...
DYNAMIC = re.compile(r"""\bt\(\s*`([a-zA-Z.]+)\.\$\{""")


def test_every_label_exists_in_both_languages_and_chinese_comes_first():
    assert sorted(ZH) == sorted(EN)
    assert all(v.strip() for v in [*ZH.values(), *EN.values()])
    assert sum(bool(re.search(r"[\u4e00-\u9fff]", v)) for v in ZH.values()) > 0.9 * len(ZH)
    for key, zh in ZH.items():
        assert sorted(re.findall(r"{(\w+)}", zh)) == sorted(re.findall(r"{(\w+)}", EN[key])), key


def test_every_key_the_app_names_is_there():
    sources = [p.read_text(encoding="utf-8") for p in APP.rglob("*") if p.suffix in (".vue", ".js")]
    used = {k for text in sources for k in STATIC_KEY.findall(text)}
    assert used and sorted(k for k in used if k not in ZH) == []
    families = {k for text in sources for k in DYNAMIC.findall(text)}
    assert families and all(any(z.startswith(f + ".") for z in ZH) for f in families)


def test_states_and_errors_are_all_worded():
    assert set(MESSAGES["en"]["status"]) == set(STATUSES)
    assert set(HTTP_STATUS) | {"PAYLOAD_TOO_LARGE", "UNKNOWN"} <= set(MESSAGES["en"]["errors"])
    assert set(MESSAGES["en"]["day"]["lists"]) == set(LISTS)
