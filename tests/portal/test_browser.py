"""The portal in a real browser: Debian's Chromium driven by Playwright against gunicorn.

One server serves the whole module (starting gunicorn with its scientific stack costs
seconds); each test works on its own data and signs in in a fresh browser context.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.conftest import LiveServer, _empty_tables
from tests.portal.conftest import PASSWORD, Network, build_network, record_referral

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}


@dataclass
class Site:
    """The running portal, its data and an admin API key."""

    url: str
    app: object
    network: Network
    api_headers: dict[str, str]

    def api(self, path: str) -> dict:
        with requests.get(self.url + "/api/v1" + path, headers=self.api_headers,
                          timeout=10) as response:
            assert response.status_code == 200, response.text
            return response.json()


@pytest.fixture(scope="module")
def site(database_url) -> Iterator[Site]:
    from referral_service import create_app
    from referral_service.db import session_scope
    from referral_service.services import auth

    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "t",
                      "RATELIMIT_ENABLED": False, "SESSION_COOKIE_SECURE": False,
                      "LOG_FORMAT": "text"})
    _empty_tables(app)
    network = build_network(app)
    with session_scope(app) as session:
        _, key = auth.create_api_key(session=session, name="browser tests", role="admin")
    try:
        server = LiveServer(database_url)
    except Exception:
        app.extensions["db_engine"].dispose()
        raise
    try:
        yield Site(server.url, app, network, {"Authorization": f"Bearer {key}"})
    finally:
        server.stop()
        app.extensions["db_engine"].dispose()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def signed_in(browser, site: Site, email: str, **context):
    """Open a fresh context, sign in through the form and return the page."""
    page = browser.new_context(accept_downloads=True, **context).new_page()
    page.set_default_timeout(15_000)
    page.goto(site.url + "/")
    assert page.url.endswith("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/dashboard")
    return page


def flash(page) -> str:
    return page.inner_text(".flashes")


def test_a_partner_edits_the_profile_and_the_api_sees_the_change(browser, site):
    page = signed_in(browser, site, "alpha@example.com")
    assert page.inner_text("h1") == "Alpha Machining"
    page.click("text=Our profile")
    page.fill("#capacity", "6")
    page.fill("#skills", "CNC machining\nWire EDM")
    page.fill("#offices-1-label", "Taichung branch")
    page.fill("#offices-1-city", "Taichung")
    page.fill("#offices-1-country", "TW")
    page.click("text=Save profile")
    assert "Profile saved." in flash(page)
    body = site.api(f"/organizations/{site.network.alpha}")
    assert body["capacity"] == 6
    assert body["skills"] == ["cnc-machining", "wire-edm"]
    assert "Taichung branch" in [office["label"] for office in body["offices"]]
    page.context.close()


def test_a_partner_accepts_a_referral_from_the_dashboard(browser, site):
    referral = record_referral(site.app, site.network.beta, site.network.alpha,
                               client="Dashboard Client Ltd")
    page = signed_in(browser, site, "alpha@example.com")
    # Not named before Alpha accepts (need to know): opened by its number.
    assert "Dashboard Client Ltd" not in page.inner_text("main")
    page.click(f"td.id a[href$='/referrals/{referral}']")
    page.wait_for_url(f"**/referrals/{referral}")
    page.click("button:has-text('Accept')")
    assert f"Referral #{referral} accepted." in flash(page)
    assert "Dashboard Client Ltd" in page.inner_text("h1")
    assert site.api(f"/referrals/{referral}")["status"] == "accepted"
    page.fill("#lost-reason", "Client went elsewhere")
    page.click("button:has-text('Mark lost')")
    # Final: the page asks first, keeping the reason typed.
    assert "Confirm: mark it lost?" in page.inner_text("main")
    assert page.input_value("#lost-reason") == "Client went elsewhere"
    assert site.api(f"/referrals/{referral}")["status"] == "accepted"
    page.check("#lost-confirm")
    page.click("button:has-text('Yes, mark it lost')")
    assert "marked lost" in flash(page)
    history = site.api(f"/referrals/{referral}")["history"]
    assert history[-1] == {**history[-1], "status": "lost", "reason": "Client went elsewhere"}
    page.context.close()


def test_a_partner_refers_a_client_through_the_match_list(browser, site):
    page = signed_in(browser, site, "alpha@example.com")
    page.click("text=Refer a client")
    page.fill("#client_name", "Browser Bikes Ltd")
    page.fill("#skills", "Anodizing")
    page.fill("#description", "Hard anodising of aluminium frames")
    page.fill("#city", "Tainan")
    page.fill("#country", "TW")
    page.click("button:has-text('Find receiving firms')")
    candidates = page.locator("li.candidate")
    assert candidates.count() >= 1
    first = candidates.first.inner_text()
    assert "Beta Finishing" in first and "Has anodizing." in first and "km away" in first
    page.check(f"#receiver-{site.network.beta}")
    page.click("button:has-text('Refer the client to the selected firm')")
    page.wait_for_url("**/referrals/*")
    assert "Browser Bikes Ltd was referred to Beta Finishing" in flash(page)
    referral_id = int(page.url.rsplit("/", 1)[1])
    body = site.api(f"/referrals/{referral_id}")
    assert (body["referrer_organization_id"], body["receiver_organization_id"]) == (
        site.network.alpha, site.network.beta)
    assert body["match_score"] > 0
    page.context.close()


def test_head_office_downloads_the_kpi_csv(browser, site):
    page = signed_in(browser, site, "boss@example.com")
    page.click("nav >> text=KPI")
    assert "New-client KPI" in page.inner_text("h1")
    with page.expect_download() as download_info:
        page.click("text=Download CSV")
    download = download_info.value
    assert download.suggested_filename.startswith("kpi-")
    with open(download.path(), encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    # The header as it always was; the sales-force columns come after it (SPEC section 10).
    assert rows[0][:12] == [
        "organization_id", "organization_name", "kind", "month", "referrals_made",
        "referrals_received", "accepted_received", "converted_made", "converted_received",
        "new_client_credits", "target", "attainment"]
    assert rows[0][12:] == ["visits", "empty_handed_visits", "commitments", "leads",
                            "leads_won", "leads_referred", "target_status"]
    page.context.close()


def test_a_partner_gets_not_found_for_another_firms_referral(browser, site):
    other = record_referral(site.app, site.network.beta, site.network.gamma,
                            client="Not Alphas Client Co")
    page = signed_in(browser, site, "alpha@example.com")
    response = page.goto(f"{site.url}/referrals/{other}")
    assert response.status == 404
    assert "Not found" in page.inner_text("h1")
    assert "Not Alphas Client" not in page.content()
    page.context.close()


def test_a_post_without_the_csrf_token_is_refused(browser, site):
    page = signed_in(browser, site, "alpha@example.com")
    # The signed-in browser's cookie goes along; only the token is missing.
    response = page.request.post(f"{site.url}/organizations/{site.network.alpha}",
                                 form={"name": "Forged", "save": "1"})
    assert response.status == 400
    assert site.api(f"/organizations/{site.network.alpha}")["name"] == "Alpha Machining"
    page.context.close()


def test_the_browser_blocks_bad_input_and_the_server_rejects_it_too(browser, site):
    page = signed_in(browser, site, "alpha@example.com")
    page.goto(f"{site.url}/organizations/{site.network.alpha}")
    page.fill("#capacity", "-5")
    page.fill("#name", "")
    page.click("text=Save profile")
    # Chromium refused to send the form: still here, nothing saved, the fields are invalid.
    assert page.eval_on_selector("#capacity", "el => el.validity.rangeUnderflow")
    assert page.eval_on_selector("#name", "el => el.validity.valueMissing")
    assert page.locator(".flashes").count() == 0
    # With the browser's checks turned off, the server refuses the same input.
    page.eval_on_selector("form.profile", "form => { form.noValidate = true; }")
    page.fill("#name", "Alpha Kept Typing")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("text=Save profile")
    assert answer.value.status == 422
    assert "Number must be between 0 and 1000000." in page.inner_text("#capacity-error")
    assert page.input_value("#capacity") == "-5"
    assert page.input_value("#name") == "Alpha Kept Typing"
    assert site.api(f"/organizations/{site.network.alpha}")["name"] == "Alpha Machining"
    page.context.close()


@pytest.mark.parametrize(("email", "paths"), [
    ("alpha@example.com", ["/dashboard", "/referrals", "/refer", "/profile"]),
    ("boss@example.com", ["/kpi", "/organizations", "/match"]),
], ids=["partner", "head-office"])
def test_pages_fit_a_phone_screen(browser, site, email, paths):
    page = signed_in(browser, site, email, viewport=PHONE)
    for path in paths:
        page.goto(site.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide"
    page.context.close()
