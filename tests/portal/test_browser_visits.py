"""A salesperson on a phone in real Chromium: log a visit with two leads, refer one on."""

from __future__ import annotations

import re

import pytest

from tests.portal.test_browser import PHONE, browser, flash, signed_in, site  # noqa: F401
from tests.portal.test_visits import add_person, add_person_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def salesperson(site) -> str:  # noqa: F811
    """Sam sells for Alpha and signs in as sam@alpha.example; return the e-mail."""
    network = site.network
    manager = add_person(site.app, network.alpha, "Mia Manager")
    sam = add_person(site.app, network.alpha, "Sam Seller", manager_id=manager)
    add_person_user(site.app, "sam@alpha.example", network.alpha, sam)
    return "sam@alpha.example"


def test_a_salesperson_logs_a_visit_on_a_phone_and_refers_a_lead(
        browser, site, salesperson):  # noqa: F811
    page = signed_in(browser, site, salesperson, viewport=PHONE)
    page.click("nav >> text=Log a visit")
    page.wait_for_url("**/visits/new")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.fill("#client_name", "Phone Harbour Bikes")
    page.fill("#client_city", "Kaohsiung")
    page.fill("#client_country", "TW")
    page.fill("#leads-0-name", "Phone Frames Co")
    page.fill("#leads-0-skills", "Anodizing")
    page.fill("#leads-0-description", "Hard anodising of bicycle frames")
    page.fill("#leads-0-city", "Tainan")
    page.fill("#leads-0-country", "TW")
    page.fill("#leads-0-relationship", "Their supplier")
    assert page.locator("#leads-1-name").count() == 0
    page.click("button:has-text('Add another lead')")
    page.wait_for_selector("#leads-1-name")
    # Everything typed came back with the new row.
    assert page.input_value("#client_name") == "Phone Harbour Bikes"
    assert page.input_value("#leads-0-name") == "Phone Frames Co"
    assert page.input_value("#leads-0-description") == "Hard anodising of bicycle frames"
    page.fill("#leads-1-name", "Phone Toys Ltd")
    page.fill("#leads-1-skills", "Injection molding")
    page.fill("#leads-1-city", "Taichung")
    page.fill("#leads-1-country", "TW")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.click("button:has-text('Save the visit')")
    page.wait_for_url(re.compile(r".*/visits/\d+$"))
    assert "Visit to Phone Harbour Bikes saved with 2 leads." in flash(page)
    visit_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("li.lead").count() == 2
    body = site.api(f"/visits/{visit_id}")
    assert [lead["name"] for lead in body["leads"]] == ["Phone Frames Co", "Phone Toys Ltd"]

    page.click("nav >> text=Leads")
    page.wait_for_url("**/leads")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    card = page.locator("li.lead", has_text="Phone Frames Co")
    card.locator("text=Refer").click()
    page.wait_for_url("**/refer")
    candidates = page.locator("li.candidate")
    assert candidates.count() >= 1
    assert "Beta Finishing" in candidates.first.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.check(f"#receiver-{site.network.beta}")
    page.click("button:has-text('Refer the lead')")
    page.wait_for_url(re.compile(r".*/referrals/\d+$"))
    assert "Phone Frames Co was referred to Beta Finishing" in flash(page)
    assert f"visit #{visit_id}" in page.inner_text(".source")
    assert "Sam Seller" in page.inner_text(".referred-by")
    referral = site.api(f"/referrals/{int(page.url.rsplit('/', 1)[1])}")
    assert referral["source"]["kind"] == "visit"
    assert referral["receiver_organization_id"] == site.network.beta
    page.context.close()


def test_the_server_refuses_an_empty_report_and_keeps_what_was_typed(
        browser, site, salesperson):  # noqa: F811
    page = signed_in(browser, site, salesperson, viewport=PHONE)
    page.goto(site.url + "/visits/new")
    page.eval_on_selector("form.visit", "form => { form.noValidate = true; }")
    page.fill("#client_name", "Nothing Today Co")
    page.fill("#notes", "Buyer was out")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("button:has-text('Save the visit')")
    assert answer.value.status == 422
    summary = page.locator("#error-summary")
    assert "empty_handed_reason" in summary.inner_text()
    summary.locator("a[href='#empty_handed_reason']").click()
    assert page.evaluate("location.hash") == "#empty_handed_reason"
    assert page.input_value("#client_name") == "Nothing Today Co"
    assert page.input_value("#notes") == "Buyer was out"
    page.fill("#empty_handed_reason", "Buyer was out of the office")
    page.click("button:has-text('Save the visit')")
    page.wait_for_url(re.compile(r".*/visits/\d+$"))
    assert "empty-handed" in page.inner_text("h1")
    page.context.close()


def test_the_sales_pages_fit_a_phone_screen(browser, site, salesperson):  # noqa: F811
    page = signed_in(browser, site, salesperson, viewport=PHONE)
    for path in ("/visits", "/leads", "/people", "/people/new", "/departments/new"):
        page.goto(site.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide"
    page.context.close()
