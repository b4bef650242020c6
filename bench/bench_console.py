"""The console in Debian's Chromium on a 20,000-grid city: the map's first paint (a shift
leader's whole city, a district dispatcher's district, a jump to street level), what panning and
zooming load (only the tiles in view?), and how long a live event takes from its publication on
the broker to the page. Printed beside, from the same run: the browser painting a blank page,
raw PostGIS cutting the same tiles, raw RabbitMQ publish-to-consume at the same pace, and what
loading every grid at once would weigh. Asserts nothing about speed."""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import kombu
import psycopg
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from bench.browser import blank_page, blank_paints, start_console  # noqa: E402
from demo.city import CityPlan, build  # noqa: E402
from demo.run import fresh_database  # noqa: E402
from shared.auth import SERVICE, Principal, mint_token  # noqa: E402
from tests.browser import VIEWPORT, launch  # noqa: E402

# 10 districts x 10 streets x 10 communities x 4 x 5 grids = 20,000 grids of about 200 m x 900 m.
PLAN = CityPlan(city_code="320500", name="Bench City", west=120.2, south=31.0, east=121.0, north=31.4,
                districts=10, streets=10, communities=10, grids_x=4, grids_y=5)
SYSTEM = Principal("bench", SERVICE, ())


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def covering(bounds: dict, z: int) -> set[tuple[int, int, int]]:
    """The tiles at zoom z that the view's bounds touch."""
    x0, y0 = tile_of(bounds["west"], bounds["north"], z)
    x1, y1 = tile_of(bounds["east"], bounds["south"], z)
    return {(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}


# --- setting up ---------------------------------------------------------------------------------

def setup(url: str, incidents: int) -> None:
    from services.dispatch import operations as dispatch_ops
    from services.dispatch.cli import DEFAULT_CONFIG
    from services.grid import operations as grid_ops
    from services.incidents import operations as incident_ops
    from services.incidents.cli import DEFAULT_CATEGORIES
    from services.registry import migrate
    fresh_database(url)
    migrate(url)
    started = time.perf_counter()
    grid_ops.import_units(SYSTEM, build(PLAN))
    print(f"imported {PLAN.grid_count:,} grids (+ their parents) in {time.perf_counter() - started:.0f} s")
    with open(DEFAULT_CATEGORIES, encoding="utf-8") as f:
        incident_ops.load_categories(SYSTEM, yaml.safe_load(f))
    with open(DEFAULT_CONFIG, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    doc["departments"] = [{**d, "serves": [PLAN.city_code]} for d in doc["departments"]]
    doc["rules"] = [{k: v for k, v in r.items() if k != "grid"} for r in doc["rules"] if "grid" not in r]
    dispatch_ops.load_config(SYSTEM, doc)
    import random
    from datetime import datetime, timezone
    rng = random.Random(5)
    for _ in range(incidents):  # open cases spread over the city, for the map's markers
        incident_ops.report(SYSTEM, report_id=str(uuid.uuid4()), category_code=rng.choice(["0102", "0503", "0601"]),
                            title="bench case", description="", lon=rng.uniform(PLAN.west, PLAN.east),
                            lat=rng.uniform(PLAN.south, PLAN.north), accuracy_m=10.0,
                            occurred_at=datetime.now(timezone.utc))
    print(f"reported {incidents:,} open cases")


CONSOLE_CALLS = ("grid", "incidents", "dispatch")  # the gRPC servers the console's pages need


def signed_in_context(browser, base: str, scope: str):
    context = browser.new_context(viewport=VIEWPORT, base_url=base, locale="zh-CN")
    answer = context.request.post("/api/session", data={"token": mint_token(f"bench-{scope}", "dispatcher", [scope])})
    assert answer.ok, answer.text()
    return context


def map_paints(browser, base: str, scope: str, reps: int) -> dict:
    """Cold loads of the map page (a fresh browser context each time: nothing cached)."""
    painted, idle, fcp, tiles, tile_bytes = [], [], [], [], []
    for _ in range(reps):
        context = signed_in_context(browser, base, scope)
        page = context.new_page()
        loaded = []
        page.on("requestfinished", lambda r: loaded.append(r) if "/api/tiles/" in r.url else None)
        page.goto("/map")
        page.wait_for_function("() => performance.getEntriesByName('gridbus-map-idle').length > 0", timeout=60_000)
        painted.append(page.evaluate("() => performance.getEntriesByName('gridbus-map-painted')[0].startTime"))
        idle.append(page.evaluate("() => performance.getEntriesByName('gridbus-map-idle')[0].startTime"))
        fcp.append(page.evaluate("() => performance.getEntriesByName('first-contentful-paint')[0].startTime"))
        tiles.append(len(loaded))
        tile_bytes.append(sum(r.sizes()["responseBodySize"] for r in loaded))
        context.close()
    return {"painted": painted, "idle": idle, "fcp": fcp, "tiles": statistics.median(tiles),
            "bytes": statistics.median(tile_bytes)}


def wait_drawn(page) -> None:
    """Until the unit tiles of the view as it is now are loaded and drawn."""
    page.evaluate("""() => new Promise((done) => {
        const m = window.__gridbusMap
        const check = () => { if (m.isSourceLoaded('units')) { m.off('render', check); done() } }
        m.once('render', () => { m.on('render', check); check() })
        m.triggerRepaint()
    })""")


def moves(browser, base: str) -> list[dict]:
    """Jump to street level, then pan a screen east, then zoom in: which tiles each move loads,
    against the tiles the new view covers."""
    context = signed_in_context(browser, base, PLAN.city_code)
    page = context.new_page()
    page.goto("/map")
    page.wait_for_function("() => performance.getEntriesByName('gridbus-map-idle').length > 0", timeout=60_000)
    centre = ((PLAN.west + PLAN.east) / 2, (PLAN.south + PLAN.north) / 2)
    steps = [("jump to zoom 14 (grids drawn)", f"m.jumpTo({{ center: [{centre[0]}, {centre[1]}], zoom: 14 }})"),
             ("pan one screen east", f"m.panBy([{VIEWPORT['width']}, 0], {{ animate: false }})"),
             ("pan half a screen south", f"m.panBy([0, {VIEWPORT['height'] // 2}], {{ animate: false }})"),
             ("zoom in one level", "m.jumpTo({ zoom: m.getZoom() + 1 })")]
    out = []
    for name, move in steps:
        loaded = []
        handler = lambda r: loaded.append(r) if "/api/tiles/" in r.url else None  # noqa: E731
        page.on("requestfinished", handler)
        started = time.perf_counter()
        page.evaluate(f"() => {{ const m = window.__gridbusMap; {move} }}")
        wait_drawn(page)
        elapsed = (time.perf_counter() - started) * 1000
        page.remove_listener("requestfinished", handler)
        view = page.evaluate("""() => { const m = window.__gridbusMap, b = m.getBounds()
            return { zoom: m.getZoom(), west: b.getWest(), south: b.getSouth(), east: b.getEast(), north: b.getNorth() } }""")
        visible = covering(view, math.floor(view["zoom"]))
        asked = {tuple(int(v) for v in r.url.split("/api/tiles/")[1].removesuffix(".pbf").split("/")) for r in loaded}
        features = page.evaluate("() => window.__gridbusMap.queryRenderedFeatures({ layers: ['unit-line-grid'] }).length")
        out.append({"move": name, "ms": elapsed, "asked": len(asked), "outside": len(asked - visible),
                    "visible": len(visible), "bytes": sum(r.sizes()["responseBodySize"] for r in loaded),
                    "grid_features": features, "tiles": sorted(asked)})
    context.close()
    return out


def live_latency(browser, base: str, amqp_uri: str, n: int, rate: float) -> list[float]:
    """Events published on the bus (persistent, confirmed) at `rate` a second: publication to the page.
    `amqp_uri`: incidents' broker user's, the only one whose incident events the console shows."""
    from shared.broker_users import credentials
    from shared.outbox import CONTENT_TYPE, events_exchange
    context = signed_in_context(browser, base, PLAN.city_code)
    page = context.new_page()
    page.goto("/queue")
    page.wait_for_function("() => document.querySelector('[data-test=live].on') !== null", timeout=30_000)
    grid = f"{PLAN.city_code[:4]}02001001001"
    lineage = [PLAN.city_code, grid[:6], grid[:9], grid[:12], grid]
    sent: dict[str, float] = {}
    with kombu.Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        for i in range(n):
            event_id = str(uuid.uuid4())
            body = json.dumps({"specversion": "1.0", "id": event_id, "source": "/gridbus/bench", "subject": "bench",
                               "type": "incidents.incident.reported", "time": "", "sequence": str(i),
                               "data": {"incident_id": str(uuid.uuid4()), "status": "reported", "lineage": lineage,
                                        "grid_code": grid, "category": "0102", "location": {"lon": 120.3, "lat": 31.1}}})
            sent[event_id] = time.time() * 1000
            producer.publish(body, exchange=events_exchange(), routing_key="incidents.incident.reported",
                             content_type=CONTENT_TYPE, content_encoding="utf-8", delivery_mode=2,
                             user_id=credentials(amqp_uri)[0], declare=[events_exchange()])
            time.sleep(1 / rate)
    page.wait_for_function(f"() => (window.__gridbusLive || []).length >= {n}", timeout=60_000)
    arrived = {e["id"]: e["received"] for e in page.evaluate("() => window.__gridbusLive")}
    context.close()
    return [arrived[k] - t for k, t in sent.items() if k in arrived]


def raw_broker_latency(amqp_uri: str, n: int, rate: float) -> list[float]:
    """The same messages, same pace, publish to a plain kombu consumer: the floor under the console."""
    exchange = kombu.Exchange(f"bench.console.{uuid.uuid4().hex[:6]}", type="topic", durable=False, auto_delete=True)
    arrived: dict[str, float] = {}
    ready = threading.Event()

    def consume():
        with kombu.Connection(amqp_uri) as conn:
            q = kombu.Queue("", exchange, routing_key="#", exclusive=True, auto_delete=True)

            def on_message(body, message):
                arrived[message.properties["message_id"]] = time.time() * 1000
                message.ack()
            with conn.Consumer(q, callbacks=[on_message]):
                ready.set()
                while len(arrived) < n:
                    try:
                        conn.drain_events(timeout=1)
                    except TimeoutError:
                        pass
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    ready.wait(10)
    sent = {}
    with kombu.Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        for i in range(n):
            key = str(i)
            sent[key] = time.time() * 1000
            producer.publish({"n": i}, exchange=exchange, routing_key="bench", delivery_mode=2, message_id=key,
                             declare=[exchange])
            time.sleep(1 / rate)
    thread.join(30)
    return [arrived[k] - t for k, t in sent.items() if k in arrived]


def tile_rates(base: str, dsn: str, tiles: list[tuple[int, int, int]]) -> tuple[float, float]:
    """Tiles a second: PostGIS cutting them straight (psycopg), and the console serving them."""
    from services.grid import tile_store, tiling
    from services.grid.tiles import _typical_widths
    from sqlalchemy import create_engine
    engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        widths = _typical_widths(conn)
        started = time.perf_counter()
        for z, x, y in tiles:
            levels = tiling.levels_at(z, tiling.tile_latitude(z, y), widths, "city")
            tile_store.tile(conn, z, x, y, levels=levels, scope=None, tolerance=tiling.simplify_tolerance(z),
                            extent=tiling.EXTENT)
        raw = len(tiles) / (time.perf_counter() - started)
    engine.dispose()
    with httpx.Client(base_url=base, timeout=30) as client:
        client.post("/api/session", json={"token": mint_token("bench-tiles", "dispatcher", [PLAN.city_code])})
        started = time.perf_counter()
        for z, x, y in tiles:
            client.get(f"/api/tiles/{z}/{x}/{y}.pbf").raise_for_status()
        console = len(tiles) / (time.perf_counter() - started)
    return raw, console


def all_grids_geojson_bytes(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT sum(length(ST_AsGeoJSON(geom))) FROM grid.units WHERE level = 'grid'").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5, help="cold loads of each page")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="live events a second")
    parser.add_argument("--incidents", type=int, default=500)
    args = parser.parse_args()

    url = os.environ.get("GRIDBUS_BENCH_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/gridbus_bench_console")
    os.environ["GRIDBUS_DATABASE_URL"] = url
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    from shared.config import settings
    amqp_uri = settings().amqp_uri
    setup(url, args.incidents)
    log_dir = ROOT / ".run" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    sup, base = start_console(log_dir, CONSOLE_CALLS)
    try:
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            browser = launch(p)
            from shared.broker_users import env_name
            report(browser, base, dsn, amqp_uri, args, sup.env[env_name("incidents")])
            browser.close()
    finally:
        sup.stop()


def report(browser, base: str, dsn: str, amqp_uri: str, args, incidents_uri: str) -> None:
    with blank_page() as blank_url:
        blank = blank_paints(browser, blank_url, args.reps, viewport=VIEWPORT)
    city = map_paints(browser, base, PLAN.city_code, args.reps)
    district = map_paints(browser, base, f"{PLAN.city_code[:4]}02", args.reps)
    steps = moves(browser, base)
    live = live_latency(browser, base, incidents_uri, args.events, args.rate)
    raw_live = raw_broker_latency(amqp_uri, args.events, args.rate)
    street_tiles = sorted({t for s in steps for t in s["tiles"]})
    raw_tiles, console_tiles = tile_rates(base, dsn, street_tiles * 3)
    everything = all_grids_geojson_bytes(dsn)

    print(f"\nThe console on a {PLAN.grid_count:,}-grid city, Debian's Chromium {browser.version} headless "
          f"(software WebGL), {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}), "
          f"viewport {VIEWPORT['width']}x{VIEWPORT['height']}, {args.reps} cold loads each (times from navigation start)")
    print(f"{'page':<44}{'median ms':>10}{'max ms':>9}{'tiles':>7}{'tile kB':>9}")
    print("-" * 79)
    print(f"{'blank page, first contentful paint':<44}{statistics.median(blank):>10.0f}{max(blank):>9.0f}")
    for name, r in (("map, whole city (shift leader)", city), ("map, one district (its dispatcher)", district)):
        print(name)
        print(f"{'   first contentful paint':<44}{statistics.median(r['fcp']):>10.0f}{max(r['fcp']):>9.0f}")
        print(f"{'   the grid hierarchy in view drawn':<44}{statistics.median(r['painted']):>10.0f}{max(r['painted']):>9.0f}"
              f"{r['tiles']:>7.0f}{r['bytes'] / 1024:>9.1f}")
        print(f"{'   cases and officers drawn too (idle)':<44}{statistics.median(r['idle']):>10.0f}{max(r['idle']):>9.0f}")
    print(f"   (all {PLAN.grid_count:,} grids as GeoJSON would be {everything / 1024:,.0f} kB before any case or label)")
    print(f"\n{'move':<32}{'ms to drawn':>11}{'tiles asked':>12}{'in view':>9}{'outside':>9}{'kB':>8}{'grids drawn':>13}")
    print("-" * 94)
    for s in steps:
        print(f"{s['move']:<32}{s['ms']:>11.0f}{s['asked']:>12}{s['visible']:>9}{s['outside']:>9}"
              f"{s['bytes'] / 1024:>8.1f}{s['grid_features']:>13}")
    print(f"\ntiles cut at street level: raw PostGIS (psycopg) {raw_tiles:,.0f}/s, through the console "
          f"{console_tiles:,.0f}/s ({console_tiles / raw_tiles:.2f}x)")
    print(f"\nlive event, publication to {'page':<14}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'received':>10}")
    print("-" * 72)
    for name, samples in (("the console's page (SSE)", live), ("raw RabbitMQ consumer", raw_live)):
        print(f"{name:<40}{pct(samples, 50):>8.1f}{pct(samples, 99):>8.1f}{max(samples):>8.1f}"
              f"{len(samples):>6}/{args.events}")
    print(f"({args.events} events at {args.rate:g}/s; p99 ratio console/raw {pct(live, 99) / pct(raw_live, 99):.1f}x)")


if __name__ == "__main__":
    main()
