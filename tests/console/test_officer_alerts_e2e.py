"""Emergency alerts in the officer's app, in a real browser (Debian's Chromium as two Pixel 7
phones, each with its own location) on the real services: an urgent report near both officers
raises an alert on both phones; one accepts and is shown the case and its place on the map, the
other is told who took it and the alert goes; a second urgent report, declined on the phone; a
third, withdrawn when its case ends first.
Screenshots go to test-artifacts/officer/."""
from __future__ import annotations

import contextlib
import uuid

import pytest
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import text

from tests.browser import launch
from tests.console.conftest import officer_member, officer_signed_in, report
from tests.console.test_officer_alerts import URGENT_CATEGORY, emergencies_knows
from tests.console.test_officer_e2e import DEVICE, SHOTS, TIMEOUT_MS, shot
from tests.incidents.conftest import GRIDS, inside
from tests.support import wait_for

GRID = GRIDS[7]


def recipient(alert_id: str, member_id: str):
    from shared.db import session_scope
    with session_scope() as db:
        return db.execute(text(
            "SELECT r.answer, r.reason, a.status, a.accepted_by, a.incident_id FROM emergencies.recipients r "
            "JOIN emergencies.alerts a ON a.id = r.alert_id WHERE r.alert_id = :a AND r.member_id = :m"),
            {"a": alert_id, "m": member_id}).first()


@contextlib.contextmanager
def phone(browser, playwright, base: str, member_id: str, where: tuple[float, float]):
    """A phone at `where` with the officer's app open on their day, signed in as they sign in."""
    context = browser.new_context(**playwright.devices[DEVICE], locale="zh-CN", timezone_id="Asia/Shanghai",
                                  geolocation={"longitude": where[0], "latitude": where[1], "accuracy": 10},
                                  permissions=["geolocation"], base_url=base)
    context.set_default_timeout(TIMEOUT_MS)
    with officer_signed_in(base, GRID, member_id) as client:  # the app's session cookie, handed to the phone
        context.add_cookies([{"name": c.name, "value": c.value, "url": base} for c in client.cookies.jar])
    page = context.new_page()
    page.goto("/officer/day")
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def phones(console_stack):
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = console_stack["base"]
    ids = {"zhou": officer_member(GRID, "周网格"), "wu": officer_member(GRID, "吴网格")}
    with sync_playwright() as p:
        browser = launch(p)
        expect.set_options(timeout=TIMEOUT_MS)
        with phone(browser, p, base, ids["zhou"], inside(GRID, 0.48, 0.5)) as zhou, \
                phone(browser, p, base, ids["wu"], inside(GRID, 0.53, 0.5)) as wu:
            for page in (zhou, wu):
                page.click("[data-test=duty-toggle]")  # on duty: the phone's position is sent
                expect(page.locator("[data-test=position-sent]")).to_be_visible()
                expect(page.locator("[data-test=alerts]")).to_have_attribute("data-live", "true")
            wait_for(lambda: emergencies_knows(*ids.values()), 60, what="emergencies knows both officers on duty")
            yield ids, {"zhou": zhou, "wu": wu}
        browser.close()


def alert_card(page):
    return page.locator("[data-test^=alert-][data-state]").filter(has=page.locator("[data-test=alert-what]"))


def test_an_urgent_report_alerts_both_phones_one_accepts_and_the_other_is_told_who(phones, incidents_stub):
    ids, p = phones
    incident = report(incidents_stub, GRID, category=URGENT_CATEGORY, title="路面塌陷，车辆无法通行")
    for page in (p["zhou"], p["wu"]):
        expect(alert_card(page)).to_have_attribute("data-state", "open")
        expect(alert_card(page).locator("[data-test=alert-what]")).to_contain_text("路面塌陷")
    shot(p["zhou"], "09-alert")
    alert_id = alert_card(p["zhou"]).get_attribute("data-test").removeprefix("alert-")

    p["zhou"].click("[data-test=alert-accept]")
    p["zhou"].wait_for_url(f"**/officer/alert/{alert_id}")
    expect(p["zhou"].locator("[data-test=alert-state]")).to_have_attribute("data-state", "mine")
    expect(p["zhou"].locator("[data-test=alert-title]")).to_have_text("路面塌陷，车辆无法通行")  # the case itself
    p["zhou"].wait_for_function("""() => window.__officerMap && window.__officerMap.loaded()
        && window.__officerMap.queryRenderedFeatures({ layers: ['cases'] }).length === 1""")  # the place, on the map
    shot(p["zhou"], "10-alert-accepted")
    taken = recipient(alert_id, ids["zhou"])
    assert (taken.answer, taken.status, taken.accepted_by) == ("accepted", "accepted", ids["zhou"])
    assert str(taken.incident_id) == incident.id

    # first accept wins: the other phone says who took it, then the alert goes
    expect(alert_card(p["wu"])).to_have_attribute("data-state", "taken")
    expect(p["wu"].locator("[data-test=alert-outcome]")).to_have_text("已由周网格接单")
    shot(p["wu"], "11-alert-taken")
    expect(alert_card(p["wu"])).to_have_count(0)


def test_a_second_officer_declines_on_the_phone(phones, incidents_stub):
    ids, p = phones
    report(incidents_stub, GRID, category=URGENT_CATEGORY, title="燃气泄漏")  # zhou is busy on the first case
    card = alert_card(p["wu"])
    expect(card).to_have_attribute("data-state", "open")
    alert_id = card.get_attribute("data-test").removeprefix("alert-")
    p["wu"].click("[data-test=alert-decline]")
    p["wu"].fill("[data-test=alert-reason]", "正在处理另一起")
    p["wu"].click("[data-test=alert-decline-confirm]")
    expect(card).to_have_attribute("data-state", "declined")
    expect(card.locator("[data-test=alert-outcome]")).to_have_text("已拒绝")
    shot(p["wu"], "12-alert-declined")
    declined = recipient(alert_id, ids["wu"])
    assert (declined.answer, declined.reason) == ("declined", "正在处理另一起")
    expect(card).to_have_count(0)


def test_an_alert_whose_case_ends_first_is_withdrawn_from_the_phone(phones, incidents_stub):
    from services.emergencies import operations as emergency_ops
    _, p = phones
    incident = report(incidents_stub, GRID, category=URGENT_CATEGORY, title="树木倒伏")
    card = alert_card(p["wu"])
    expect(card).to_have_attribute("data-state", "open")
    emergency_ops.on_incident_event({"id": str(uuid.uuid4()), "type": "incidents.incident.voided",
                                     "data": {"incident_id": incident.id}})  # as incidents' event tells it
    expect(card).to_have_attribute("data-state", "withdrawn")
    expect(card.locator("[data-test=alert-outcome]")).to_have_text("案件已结束，预警已撤销")
    shot(p["wu"], "13-alert-withdrawn")
    expect(card).to_have_count(0)
