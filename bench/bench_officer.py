"""The officer's app's first load on a phone on a throttled "fast 3G" link (Chrome DevTools'
preset: 562.5 ms round trip, 1.44 Mbit/s down, 675 kbit/s up) in Debian's Chromium as a Pixel 7:
first contentful paint and interactive (the report form can be filled and sent: the session
checked and the category catalogue in), and the scripts it transfers, compressed. Printed beside,
in the same run and on the same link: the browser loading a blank page (the floor any page pays)
and the ratio; then the same unthrottled, a return visit (the service worker's cache), and the
scripts' gzip sizes from the build (first load, and everything including the lazy map). Targets
(README): interactive under 3 s on fast 3G, under 500 kB of script compressed. Asserts nothing."""
from __future__ import annotations

import argparse
import gzip
import os
import re
import statistics
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.browser import blank_page, blank_paints, first_paint_ms, start_console  # noqa: E402
from demo.city import build  # noqa: E402
from demo.run import PLAN, fresh_database  # noqa: E402
from shared import auth  # noqa: E402
from shared.auth import SERVICE, Principal, mint_token  # noqa: E402
from tests.browser import launch  # noqa: E402

SYSTEM = Principal("bench", SERVICE, ())
DIST = ROOT / "services" / "console" / "web" / "dist"
DEVICE = "Pixel 7"
# Chrome DevTools' "Fast 3G" (its figures are the link's, times 0.9 for throughput, 3.75 for latency).
FAST_3G = {"offline": False, "latency": 562.5, "downloadThroughput": 1.6 * 1024 * 1024 / 8 * 0.9,
           "uploadThroughput": 750 * 1024 / 8 * 0.9}
TARGET_INTERACTIVE_MS, TARGET_SCRIPT_KB = 3000, 500


def setup(url: str) -> tuple[str, str]:
    """A fresh database with the demo city, the catalogue and one officer; the officer's id."""
    from services.grid import operations as grid_ops
    from services.incidents import operations as incident_ops
    from services.incidents.cli import DEFAULT_CATEGORIES
    from services.registry import migrate
    fresh_database(url)
    migrate(url)
    doc = build(PLAN)
    grid_ops.import_units(SYSTEM, doc)
    with open(DEFAULT_CATEGORIES, encoding="utf-8") as f:
        incident_ops.load_categories(SYSTEM, yaml.safe_load(f))
    grid = min(f["properties"]["code"] for f in doc["features"] if len(f["properties"]["code"]) == 15)
    admin = Principal("bench-admin", auth.ADMIN, (PLAN.city_code,))
    member = grid_ops.create_member(admin, "测试网格员", "13900009999", auth.OFFICER)
    grid_ops.assign_member(admin, member.id, grid, True)
    return member.id, grid


SCRIPT_BYTES = """() => performance.getEntriesByType('resource').filter((e) => /\\.m?js(\\?|$)/.test(e.name))
    .reduce((n, e) => n + e.encodedBodySize, 0)"""


def throttle(page, conditions: dict | None) -> None:
    if conditions:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", conditions)


def app_loads(p, browser, base: str, bearer: str, conditions: dict | None, reps: int) -> dict:
    """Cold first loads (a fresh browser profile each: nothing cached, no service worker yet),
    signed in already (the session cookie is there, as after the morning's sign-in), and a return
    visit after each."""
    fcp, interactive, scripts, again = [], [], [], []
    for _ in range(reps):
        context = browser.new_context(**p.devices[DEVICE], base_url=base, locale="zh-CN")
        assert context.request.post("/api/officer/session", data={"token": bearer}).ok
        page = context.new_page()
        throttle(page, conditions)
        page.goto("/officer/report")
        page.wait_for_function("""() => performance.getEntriesByName('gridbus-officer-interactive').length > 0
            && performance.getEntriesByName('first-contentful-paint').length > 0""", timeout=60_000)
        fcp.append(first_paint_ms(page))
        interactive.append(page.evaluate("() => performance.getEntriesByName('gridbus-officer-interactive')[0].startTime"))
        scripts.append(page.evaluate(SCRIPT_BYTES))
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=60_000)
        page.reload()
        page.wait_for_function("() => performance.getEntriesByName('gridbus-officer-interactive').length > 0",
                               timeout=60_000)
        again.append(page.evaluate("() => performance.getEntriesByName('gridbus-officer-interactive')[0].startTime"))
        context.close()
    return {"fcp": fcp, "interactive": interactive, "scripts": statistics.median(scripts), "again": again}


def built_sizes() -> tuple[int, int, int]:
    """gzip sizes (level 9, as the console serves them) of the scripts the page's HTML loads, of
    every script the app can load (the service worker's list, the map included), and their raw size."""
    html = (DIST / "officer.html").read_text(encoding="utf-8")
    first = set(re.findall(r'(?:src|href)="(/assets/[^"]+\.js)"', html))
    every = set(re.findall(r'"(/assets/[^"]+\.m?js)"', (DIST / "officer" / "sw.js").read_text(encoding="utf-8")))
    gz = {f: len(gzip.compress((DIST / f.lstrip("/")).read_bytes(), 9)) for f in every | first}
    raw = sum((DIST / f.lstrip("/")).stat().st_size for f in every)
    return sum(gz[f] for f in first), sum(gz[f] for f in every), raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5, help="cold loads of each page on each link")
    args = parser.parse_args()
    url = os.environ.get("GRIDBUS_BENCH_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/gridbus_bench_officer")
    os.environ["GRIDBUS_DATABASE_URL"] = url
    member_id, grid = setup(url)
    bearer = mint_token(member_id, auth.OFFICER, [grid])
    log_dir = ROOT / ".run" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # the app's calls: grid and incidents, and emergencies (it holds the officer's alert stream)
    sup, base = start_console(log_dir, ("grid", "incidents", "emergencies"), prefix="officer-bench-",
                              env={"GRIDBUS_ATTACHMENT_DIR": str(log_dir / "attachments")})
    try:
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p, blank_page() as blank_url:
            browser = launch(p)
            rows = {}
            for link, conditions in (("fast 3G", FAST_3G), ("unthrottled", None)):
                rows[link] = (blank_paints(browser, blank_url, args.reps, lambda page: throttle(page, conditions),
                                           **p.devices[DEVICE]),
                              app_loads(p, browser, base, bearer, conditions, args.reps))
            version = browser.version
            browser.close()
    finally:
        sup.stop()
    first_gz, every_gz, every_raw = built_sizes()

    med = statistics.median
    print(f"\nThe officer's app, first load: Debian's Chromium {version} headless as a {DEVICE}, "
          f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}), {args.reps} cold loads each "
          "(ms from navigation start; a fresh profile each, signed in)")
    print(f"{'link':<14}{'what':<46}{'median ms':>10}{'max ms':>9}")
    print("-" * 79)
    for link, (blank, app) in rows.items():
        print(f"{link:<14}{'blank page, first contentful paint':<46}{med(blank):>10.0f}{max(blank):>9.0f}")
        print(f"{'':<14}{'officer app, first contentful paint':<46}{med(app['fcp']):>10.0f}{max(app['fcp']):>9.0f}")
        print(f"{'':<14}{'officer app, interactive (form ready)':<46}{med(app['interactive']):>10.0f}"
              f"{max(app['interactive']):>9.0f}")
        print(f"{'':<14}{'   ratio to the blank page':<46}{med(app['interactive']) / med(blank):>9.1f}x")
        print(f"{'':<14}{'return visit (service worker), interactive':<46}{med(app['again']):>10.0f}"
              f"{max(app['again']):>9.0f}")
    fast = rows["fast 3G"][1]
    print(f"\nscript transferred on first load (compressed, on the wire): {fast['scripts'] / 1024:.1f} kB")
    print(f"script in the build, gzip -9: first load {first_gz / 1024:.1f} kB; everything the app can load "
          f"(with the lazy map) {every_gz / 1024:.1f} kB ({every_raw / 1024:.0f} kB raw)")
    verdict = "meets" if med(fast["interactive"]) < TARGET_INTERACTIVE_MS else "misses"
    print(f"targets: interactive on fast 3G {med(fast['interactive']):.0f} ms vs < {TARGET_INTERACTIVE_MS} ms "
          f"({verdict}); first-load script {first_gz / 1024:.1f} kB vs < {TARGET_SCRIPT_KB} kB "
          f"({'meets' if first_gz / 1024 < TARGET_SCRIPT_KB else 'misses'}); the whole app with its map "
          f"{every_gz / 1024:.1f} kB ({'within' if every_gz / 1024 < TARGET_SCRIPT_KB else 'over'} {TARGET_SCRIPT_KB} kB)")


if __name__ == "__main__":
    main()
