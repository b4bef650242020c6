"""The console in a real browser (Debian's Chromium) on the real services: sign in, the demo
city's grids on the map, a report sent over gRPC appearing live, opening and assigning it, a
stale version, another district's case refused, a CSV export; a screenshot of every page
goes to test-artifacts/console/."""
from __future__ import annotations

import csv
import io
import re
import uuid

import grpc
import pytest
from playwright.sync_api import expect, sync_playwright

from gridbus.dispatch.v1 import dispatch_pb2 as dpb
from gridbus.dispatch.v1 import dispatch_pb2_grpc
from tests.browser import ARTIFACTS, VIEWPORT, launch
from tests.console.conftest import DISTRICT, OTHER_DISTRICT, PASSWORD, member_with_password, report
from tests.incidents.conftest import GRIDS
from tests.support import metadata, token

GRID, OTHER_GRID = GRIDS[2], GRIDS[-3]
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def page(console_stack):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai",
                                      base_url=console_stack["base"], accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)  # what the page shows after the services' events
        tab = context.new_page()
        yield tab
        browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def rendered_unit_codes(page) -> list[str]:
    return page.evaluate("""() => window.__gridbusMap.queryRenderedFeatures({ layers: ['unit-fill'] })
                                   .map((f) => f.properties.code)""")


def test_a_dispatcher_signs_in_and_sees_the_districts_grids_on_the_map(page):
    page.goto("/map")
    expect(page.locator("[data-test=signin]")).to_be_visible()  # sent to sign in first
    dispatcher = member_with_password("dispatcher", DISTRICT, "E2E Dispatcher")
    page.fill("[data-test=signin-login]", dispatcher.username)
    page.fill("[data-test=signin-password]", "not-the-password")
    page.click("[data-test=signin-submit]")
    expect(page.locator("[data-test=signin-error]")).to_contain_text("密码错误")  # wrong: in the page's language
    page.fill("[data-test=signin-password]", PASSWORD)
    shot(page, "01-sign-in")
    page.click("[data-test=signin-submit]")
    page.wait_for_url("**/map**")
    expect(page.locator("[data-test=who]")).to_contain_text("District 1")
    page.wait_for_function("""() => window.__gridbusMap && window.__gridbusMap.loaded()
        && window.__gridbusMap.queryRenderedFeatures({ layers: ['unit-line-grid'] }).length > 0""")
    codes = set(rendered_unit_codes(page))
    assert DISTRICT in codes and any(len(c) == 15 and c.startswith(DISTRICT) for c in codes)
    assert not any(c.startswith(OTHER_DISTRICT) for c in codes)
    expect(page.locator("[data-test=live]")).to_have_class("live on")
    shot(page, "02-map")
    box = page.locator("[data-test=map]").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2 + 40)  # a grid
    expect(page.locator("[data-test=unit-code]")).to_have_text(re.compile(rf"^{DISTRICT}\d{{9}}$"))
    expect(page.locator("[data-test=unit-panel]")).to_contain_text("网格员")
    shot(page, "02-map-grid-clicked")


def test_a_report_sent_over_grpc_appears_live_and_is_assigned(page, incidents_stub):
    page.goto("/queue")
    expect(page.locator("[data-test=queue-table]")).to_be_visible()
    page.evaluate("window.__notReloaded = true")
    title = f"路边小广告 {uuid.uuid4().hex[:6]}"
    incident = report(incidents_stub, GRID, title=title)
    row = page.locator(f"[data-test=row-{incident.id}]")
    expect(row).to_be_visible()  # pushed to the page, no reload
    assert page.evaluate("window.__notReloaded") is True
    shot(page, "03-queue-live")
    row.click()
    expect(page.locator("[data-test=case-title]")).to_have_text(title)
    expect(page.locator("[data-test=action-assign]")).to_be_visible()  # in the manual queue
    expect(page.locator("[data-test=timeline]")).to_contain_text("上报")
    shot(page, "04-case-detail")
    page.click("[data-test=action-assign]")
    page.select_option("[data-test=form-department]", "CG-ADVERTISING")
    page.click("[data-test=form-submit]")
    expect(page.locator("[data-test=case-status]")).to_have_attribute("data-status", "dispatched")
    expect(page.locator("[data-test=task]")).to_contain_text("城管广告")
    shot(page, "05-case-assigned")


def test_a_stale_version_is_shown_as_such_and_the_view_refreshes(page, incidents_stub, console_stack):
    incident = report(incidents_stub, GRID)
    page.goto(f"/case/{incident.id}")
    page.click("[data-test=action-assign]")  # the form remembers the versions seen now
    page.select_option("[data-test=form-department]", "CG-STREET")
    # Another dispatcher assigns it first.
    other = metadata(token("dispatcher", DISTRICT, member_id="e2e-other-dispatcher"))
    with grpc.insecure_channel(f"127.0.0.1:{console_stack['ports']['dispatch']}") as channel:
        dispatch = dispatch_pb2_grpc.DispatchServiceStub(channel)
        task = dispatch.GetTask(dpb.GetTaskRequest(incident_id=incident.id), metadata=other)
        dispatch.Assign(dpb.AssignRequest(task_id=task.id, department_code="CG-ADVERTISING",
                                          expected_version=task.version), metadata=other)
    page.click("[data-test=form-submit]")
    notice = page.locator("[data-test=action-notice]")
    expect(notice).to_have_class("notice stale")
    expect(notice).to_contain_text("其他调度员已先处理了此案件")
    expect(page.locator("[data-test=case-status]")).to_have_attribute("data-status", "dispatched")
    expect(page.locator("[data-test=task]")).to_contain_text("城管广告")
    shot(page, "06-stale-version")


def test_another_districts_case_is_refused_in_plain_words(page, incidents_stub):
    theirs = report(incidents_stub, OTHER_GRID)
    page.goto(f"/case/{theirs.id}")
    error = page.locator("[data-test=case-error]")
    expect(error).to_contain_text("无权操作")
    expect(error).to_contain_text("outside your grids")  # the service's own words beneath
    shot(page, "07-permission-denied")


def test_the_queue_exports_as_csv(page):
    page.goto("/queue")
    expect(page.locator("[data-test^=row-]").first).to_be_visible()
    with page.expect_download() as download:
        page.click("[data-test=export-gridbus-queue]")
    path = ARTIFACTS / "queue.csv"
    download.value.save_as(path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["紧急", "标题", "状态", "类别"]
    shown = page.locator("[data-test^=row-]").count()
    assert len(rows) - 1 == shown and any("路边小广告" in r[1] for r in rows[1:])


def test_the_figures_and_the_wall_display(page):
    page.goto("/figures")
    expect(page.locator(".kpi").first).to_be_visible()
    page.wait_for_function("() => document.querySelectorAll('.chart canvas').length >= 5")
    expect(page.locator(".kpi").first).not_to_contain_text("—")
    shot(page, "08-figures")
    page.goto("/wall")
    expect(page.locator("[data-test=wall]")).to_be_visible()
    expect(page.locator(".topbar")).to_have_count(0)  # no controls on the wall
    page.wait_for_function("() => document.querySelectorAll('.wall .chart canvas').length >= 4")
    page.wait_for_timeout(1500)  # the wall's map draws its tiles
    shot(page, "09-wall")


def test_the_language_switch_turns_every_label_english(page):
    page.goto("/map")
    page.select_option("[data-test=lang]", "en")
    expect(page.locator("[data-test=nav-queue]")).to_have_text("Work queue")
    page.wait_for_function("() => window.__gridbusMap && window.__gridbusMap.loaded()")
    shot(page, "10-map-english")
    page.select_option("[data-test=lang]", "zh-CN")
    expect(page.locator("[data-test=nav-queue]")).to_have_text("工作队列")
