"""The officer's app in a real browser (Debian's Chromium as a Pixel 7: its viewport, touch and
the phone's location) on the real services: sign in, report with a photo, report while offline,
reload with no network, come back online and find exactly one incident; verify a resolved case
on site with a photo; go on duty and off. Screenshots go to test-artifacts/officer/."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from services.incidents import operations as incident_ops
from services.incidents.operations.views import Filters
from tests.browser import ROOT, launch
from tests.conftest import SYSTEM
from tests.console.conftest import PASSWORD, UNROUTED_CATEGORY, member_with_password
from tests.console.test_officer_api import resolve
from tests.incidents.conftest import GRIDS, inside, report_request
from tests.support import metadata, token, wait_for

GRID = GRIDS[4]
SHOTS = ROOT / "test-artifacts" / "officer"
PHOTO = Path(__file__).parent / "photos" / "street-with-gps.jpg"
TIMEOUT_MS = 20_000
DEVICE = "Pixel 7"


@pytest.fixture(scope="module")
def officer(console_stack):
    return member_with_password("officer", GRID, "王网格")


@pytest.fixture(scope="module")
def officer_id(officer):
    return officer.id


@pytest.fixture(scope="module")
def context(console_stack):
    SHOTS.mkdir(parents=True, exist_ok=True)
    lon, lat = inside(GRID, 0.4, 0.6)
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(**p.devices[DEVICE], locale="zh-CN", timezone_id="Asia/Shanghai",
                                      geolocation={"longitude": lon, "latitude": lat, "accuracy": 15},
                                      permissions=["geolocation"], base_url=console_stack["base"])
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        yield context
        browser.close()


@pytest.fixture(scope="module")
def page(context):
    return context.new_page()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def incidents_titled(title: str) -> list:
    found, _ = incident_ops.list_incidents(SYSTEM, Filters(grid_code=GRID), page_size=200)
    return [i for i in found if i.title == title]


def fill_report(page, title: str, navigate: bool = True) -> None:
    if navigate:
        page.goto("/officer/report")
    page.fill("[data-test=category-search]", "广告")
    page.click(f"[data-test=category-{UNROUTED_CATEGORY}]")
    page.fill("[data-test=title]", title)
    page.fill("[data-test=description]", "电线杆上贴满小广告")
    page.click("[data-test=use-gps]")
    expect(page.locator("[data-test=location]")).to_contain_text("15")  # the phone's accuracy, in metres
    page.set_input_files("[data-test=photo-input]", str(PHOTO))
    expect(page.locator(".photos .thumb")).to_have_count(1)


def test_an_officer_signs_in_on_the_phone_and_the_app_is_installable(page, officer):
    page.goto("/officer")
    page.wait_for_url("**/officer/signin")
    page.fill("[data-test=signin-login]", officer.phone)
    page.fill("[data-test=signin-password]", PASSWORD)
    shot(page, "01-sign-in")
    page.click("[data-test=signin-submit]")
    page.wait_for_url("**/officer/report")
    expect(page.locator("[data-test=who]")).to_have_text("王网格")
    # the service worker controls the page (it opens offline), and Chrome finds nothing missing to install it
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    manifest = page.evaluate("() => fetch('/officer/manifest.webmanifest').then((r) => r.json())")
    assert manifest["start_url"] == "/officer/" and manifest["display"] == "standalone"
    cdp = page.context.new_cdp_session(page)
    errors = {e["errorId"] for e in cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]}
    assert errors <= {"in-incognito"}  # a test's browser context is a private window; nothing else is missing


def test_a_report_with_a_photo_reaches_the_services(page):
    title = f"小广告 {uuid.uuid4().hex[:6]}"
    fill_report(page, title)
    shot(page, "02-report-form")
    page.click("[data-test=send]")
    expect(page.locator("[data-test=report-notice]")).to_have_text("已发送")
    [incident] = incidents_titled(title)
    assert incident.category_code == UNROUTED_CATEGORY and incident.grid_code == GRID
    assert incident.accuracy_m == 15 and len(incident.attachments) == 1
    assert incident.attachments[0]["uri"].startswith("gridbus://attachments/")


def test_a_place_tapped_on_the_map_of_my_grids_and_a_large_photo_made_small(page, tmp_path, photo_dir):
    big = tmp_path / "camera.jpg"
    noise = Image.effect_noise((4000, 3000), 60).convert("RGB")  # a 12-megapixel photo that compresses badly
    noise.save(big, "JPEG", quality=92)
    assert big.stat().st_size > 1_500_000
    title = f"地图点选 {uuid.uuid4().hex[:6]}"
    page.goto("/officer/report")
    page.fill("[data-test=category-search]", "0201")
    page.click(f"[data-test=category-{UNROUTED_CATEGORY}]")
    page.fill("[data-test=title]", title)
    page.click("[data-test=pick-on-map]")
    page.wait_for_function("""() => window.__officerMap && window.__officerMap.loaded()
        && window.__officerMap.queryRenderedFeatures({ layers: ['unit-line-grid'] }).length > 0""")
    box = page.locator("[data-test=officer-map]").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # the middle of my grid
    expect(page.locator("[data-test=location]")).to_contain_text("地图点选")
    page.set_input_files("[data-test=photo-input]", str(big))
    expect(page.locator(".photos .thumb")).to_have_count(1)
    shot(page, "02b-report-map-tap")
    page.click("[data-test=send]")
    expect(page.locator("[data-test=report-notice]")).to_have_text("已发送")
    [incident] = incidents_titled(title)
    assert incident.grid_code == GRID and 0 < incident.accuracy_m <= 5000  # a tap is as exact as the map's scale
    [photo] = incident.attachments
    assert photo["size_bytes"] < big.stat().st_size / 2
    [stored] = Path(photo_dir).rglob(f"{photo['sha256']}.jpg")
    with Image.open(stored) as image:
        assert max(image.size) == 2048 and image.size[0] > image.size[1]


def test_the_app_speaks_english_too(page):
    page.goto("/officer/report")
    page.select_option("[data-test=lang]", "en")
    expect(page.locator("[data-test=tab-day]")).to_have_text("My day")
    expect(page.locator("[data-test=send]")).to_have_text("Send")
    shot(page, "08-report-english")
    page.select_option("[data-test=lang]", "zh-CN")
    expect(page.locator("[data-test=tab-day]")).to_have_text("我的一天")


def test_offline_the_report_waits_survives_a_reload_and_goes_once_online(page, context):
    title = f"离线上报 {uuid.uuid4().hex[:6]}"
    page.goto("/officer/report")
    context.set_offline(True)
    try:
        expect(page.locator("[data-test=offline]")).to_be_visible()
        fill_report(page, title, navigate=False)
        page.click("[data-test=send]")
        expect(page.locator("[data-test=report-notice]")).to_have_text("已保存，联网后自动发送")
        page.reload()  # served by the service worker: there is no network
        expect(page.locator("[data-test=offline]")).to_be_visible()
        page.click("[data-test=tab-outbox]")
        item = page.locator("[data-test=outbox-item]")
        expect(item).to_have_count(1)
        expect(item.locator("[data-test=photo-state]")).to_have_text("照片待上传")
        expect(page.locator("[data-test=outbox-count]")).to_have_text("1")
        shot(page, "03-offline-outbox")
        assert incidents_titled(title) == []
    finally:
        context.set_offline(False)
    expect(page.locator("[data-test=outbox-empty]")).to_be_visible()  # sent when the network came back
    shot(page, "04-back-online")
    wait_for(lambda: len(incidents_titled(title)) == 1, what="the offline report arrives")
    assert len(incidents_titled(title)) == 1


def test_a_resolved_case_is_verified_on_site_with_a_photo(page, incidents_stub):
    other = token("officer", GRID, member_id=str(uuid.uuid4()))
    case = incidents_stub.Report(report_request(GRID, category=UNROUTED_CATEGORY, title="井盖缺失"),
                                 metadata=metadata(other)).incident
    resolve(case.id)
    page.goto("/officer/day")
    page.wait_for_function("""() => window.__officerMap && window.__officerMap.loaded()
        && window.__officerMap.queryRenderedFeatures({ layers: ['unit-line-grid'] }).length > 0""")
    row = page.locator(f"[data-test=list-verify] [data-test=case-{case.id}]")
    expect(row).to_be_visible()
    shot(page, "05-my-day")
    row.click()
    expect(page.locator("[data-test=case-title]")).to_have_text("井盖缺失")
    page.click("[data-test=action-verify]")
    page.fill("[data-test=action-note]", "现场已补装井盖")
    page.set_input_files("[data-test=photo-input]", str(PHOTO))
    page.click("[data-test=action-submit]")
    expect(page.locator("[data-test=case-status]")).to_have_attribute("data-status", "verified")
    expect(page.locator(".history img")).to_have_count(1)  # the on-site photo, through a signed link
    shot(page, "06-verified")


def test_on_duty_the_position_is_sent_and_off_duty_it_is_not(page, officer_id):
    from services.grid import operations as grid_ops
    page.goto("/officer/day")
    expect(page.locator("[data-test=duty-state]")).to_have_text("离岗")
    page.click("[data-test=duty-toggle]")
    expect(page.locator("[data-test=duty-state]")).to_have_text("在岗")
    expect(page.locator("[data-test=position-sent]")).to_be_visible()
    member = grid_ops.get_member(SYSTEM, officer_id)
    assert member.on_duty and member.position is not None
    shot(page, "07-on-duty")
    page.click("[data-test=duty-toggle]")
    expect(page.locator("[data-test=duty-state]")).to_have_text("离岗")
    assert not grid_ops.get_member(SYSTEM, officer_id).on_duty
