"""Frictions found walking the portal in Chromium (issue 16), each checked in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.portal.conftest import record_referral
from tests.portal.test_browser import PHONE, browser, flash, signed_in, site  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _failed_requests(page) -> list[str]:
    """Start recording every request the page makes that answers 4xx or 5xx."""
    failed: list[str] = []
    page.on("response", lambda response: failed.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    return failed


@pytest.mark.parametrize("email", ["boss@example.com", "alpha@example.com"])
def test_no_page_asks_for_something_missing(browser, site, email):  # noqa: F811
    referral = record_referral(site.app, site.network.beta, site.network.alpha,
                               client=f"Favicon Client of {email}")
    page = signed_in(browser, site, email)
    failed = _failed_requests(page)
    for path in ("/dashboard", "/referrals", f"/referrals/{referral}", "/visits", "/leads",
                 "/people", "/targets"):
        page.goto(site.url + path, wait_until="networkidle")
    # Chromium asks for an icon for every page; the portal names one, so nothing is missing.
    assert failed == []
    icon = page.get_attribute("link[rel=icon]", "href")
    response = page.context.request.get(site.url + icon)
    assert response.status == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    page.context.close()


def test_times_say_their_time_zone_and_history_names_people(browser, site):  # noqa: F811
    referral = record_referral(site.app, site.network.beta, site.network.alpha,
                               client="Time Zone Trading")
    page = signed_in(browser, site, "alpha@example.com", viewport=PHONE)
    page.goto(f"{site.url}/referrals/{referral}")
    page.click("button:has-text('Accept')")
    assert f"Referral #{referral} accepted." in flash(page)
    sent = page.inner_text("dt:has-text('Sent') + dd")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", sent.strip()), sent
    history = page.inner_text("ol.history")
    # Who moved it, as a person reads it: not the stored actor strings.
    assert "by alpha@example.com" in history
    assert "user:" not in history
    assert "by the service" in history  # the referral was recorded by the service itself
    assert "system" not in history
    page.context.close()


def test_a_partner_on_a_head_office_page_is_told_plainly(browser, site):  # noqa: F811
    page = signed_in(browser, site, "alpha@example.com")
    response = page.goto(site.url + "/organizations")
    assert response.status == 403
    text = page.inner_text("main")
    assert "This page is for head office" in text
    assert "CRM" not in text
    page.click("text=Back to the start")
    page.wait_for_url("**/dashboard")
    page.context.close()


def test_form_errors_are_summed_up_at_the_top_with_focus_on_them(browser, site):  # noqa: F811
    page = signed_in(browser, site, "alpha@example.com", viewport=PHONE)
    page.click("text=Our profile")
    page.fill("#offices-0-city", "Taichungg")
    page.fill("#offices-0-latitude", "")
    page.fill("#offices-0-longitude", "")
    page.click("text=Save profile")
    summary = page.locator("#error-summary")
    assert summary.is_visible()
    # Focus is on the summary at the top, not on a field 1,000 px down.
    # autofocus is applied at the browser's next rendering step: wait for it, not a clock.
    # (expect() polls from Playwright's own script; a string predicate would be eval'd in the
    # page, which the portal's CSP, script-src 'none', refuses in Chromium 156.)
    expect(summary).to_be_focused()
    assert page.evaluate("document.getElementById('error-summary')"
                         ".getBoundingClientRect().top") < PHONE["height"]
    link = summary.locator("a", has_text="Office 1, City")
    assert "Taichungg" in link.inner_text()
    link.click()
    assert page.url.endswith("#offices-0-city")
    # What was typed survives the error.
    assert page.input_value("#offices-0-city") == "Taichungg"
    page.context.close()


def test_a_kpi_target_error_shows_at_the_top(browser, site):  # noqa: F811
    page = signed_in(browser, site, "boss@example.com")
    page.goto(site.url + "/kpi")
    page.fill("#organization", "No Such Firm Anywhere")
    page.fill("#new_clients", "3")
    page.click("button:has-text('Set target')")
    summary = page.locator("#error-summary")
    assert summary.is_visible()
    # autofocus is applied at the browser's next rendering step: wait for it, not a clock.
    # (expect() polls from Playwright's own script; a string predicate would be eval'd in the
    # page, which the portal's CSP, script-src 'none', refuses in Chromium 156.)
    expect(summary).to_be_focused()
    link = summary.locator("a", has_text="Firm (name or id)")
    link.click()
    assert page.url.endswith("#organization")
    page.context.close()


def test_referrals_sort_by_column_and_find_a_client(browser, site):  # noqa: F811
    network = site.network
    # Sent by Alpha, so Alpha knows the clients (a receiver learns them on accepting).
    for name in ("Sorting Yellow Ltd", "Sorting Blue Ltd", "Sorting Green Ltd"):
        record_referral(site.app, network.alpha, network.beta, client=name)
    page = signed_in(browser, site, "alpha@example.com")
    page.goto(site.url + "/referrals")
    page.fill("#client", "sorting")
    page.click("button:has-text('Filter')")

    def clients() -> list[str]:
        return page.locator("table.list tbody td.title a").all_inner_texts()

    assert clients() == ["Sorting Green Ltd", "Sorting Blue Ltd", "Sorting Yellow Ltd"]
    page.click("th >> text=Client")
    assert clients() == ["Sorting Blue Ltd", "Sorting Green Ltd", "Sorting Yellow Ltd"]
    assert page.get_attribute("th:has-text('Client')", "aria-sort") == "ascending"
    page.click("th >> text=Client")
    assert clients() == ["Sorting Yellow Ltd", "Sorting Green Ltd", "Sorting Blue Ltd"]
    page.click("th >> text=Sent")  # newest first, then oldest first
    assert clients() == ["Sorting Green Ltd", "Sorting Blue Ltd", "Sorting Yellow Ltd"]
    page.click("th >> text=Sent")
    assert clients() == ["Sorting Yellow Ltd", "Sorting Blue Ltd", "Sorting Green Ltd"]
    assert page.get_attribute("th:has-text('Sent')", "aria-sort") == "ascending"
    assert page.input_value("#client") == "sorting"  # the search is kept while sorting
    page.context.close()


def test_head_office_invites_someone_who_then_signs_in_on_a_phone(browser, site):  # noqa: F811
    page = signed_in(browser, site, "boss@example.com")
    page.click("nav >> text=Sign-ins")
    page.fill("#email", "phone.invite@beta.example")
    page.fill("#name", "Phoebe Invite")
    page.select_option("#role", "partner")
    page.fill("#organization", "Beta Finishing")
    page.click("button:has-text('Invite')")
    link = page.input_value("#made-link")
    assert "/welcome/" in link
    page.context.close()
    phone = browser.new_context(viewport=PHONE).new_page()
    phone.goto(link)
    assert "phone.invite@beta.example" in phone.inner_text("main")
    phone.fill("#password", "phoebe-pass-2026")
    phone.fill("#repeat", "phoebe-pass-2026")
    phone.click("button:has-text('Set password')")
    phone.wait_for_url("**/login")
    phone.fill("#email", "phone.invite@beta.example")
    phone.fill("#password", "phoebe-pass-2026")
    phone.click("main button[type=submit]")
    phone.wait_for_url("**/dashboard")
    assert phone.inner_text("h1") == "Beta Finishing"
    phone.goto(link)  # the link worked once
    assert "has been used or replaced" in phone.inner_text("main")
    phone.context.close()


def test_a_partner_opens_a_candidates_profile_and_refers_a_lost_client_on(
        browser, site):  # noqa: F811
    from referral_service.db import session_scope
    from referral_service.services import referrals
    from referral_service.services.auth import SYSTEM

    network = site.network
    lost = record_referral(site.app, network.gamma, network.alpha, client="Onward Browser Ltd")
    with session_scope(site.app) as session:
        for status in ("accepted", "lost"):
            referrals.move_referral(session=session, referral_id=lost, status=status,
                                    reason="Not for us", actor=SYSTEM)
    page = signed_in(browser, site, "alpha@example.com", viewport=PHONE)
    page.goto(f"{site.url}/referrals/{lost}")
    page.click("text=Refer this client to another firm")
    assert page.input_value("#client_name") == "Onward Browser Ltd"  # nothing retyped
    assert page.input_value("#skills") == "anodizing"
    page.fill("#city", "Tainan")
    page.fill("#country", "TW")
    page.click("button:has-text('Find receiving firms')")
    first = page.locator("li.candidate").first
    assert "Beta Finishing" in first.inner_text()
    with page.expect_popup() as popup:  # the candidate's profile, beside the list
        first.locator("a:has-text('profile')").click()
    profile = popup.value
    profile.wait_for_load_state()
    assert profile.inner_text("h1").startswith("Beta Finishing")
    assert "Hard anodising and powder coating of aluminium parts." in profile.inner_text("main")
    profile.close()
    page.check(f"#receiver-{network.beta}")
    page.click("button:has-text('Refer the client to the selected firm')")
    page.wait_for_url("**/referrals/*")
    assert "Onward Browser Ltd was referred to Beta Finishing" in flash(page)
    page.context.close()


def test_head_office_pages_the_targets_table_without_losing_what_was_typed(
        browser, site):  # noqa: F811
    from datetime import UTC, datetime

    from referral_service.db import session_scope
    from referral_service.services import kpi
    from referral_service.services.auth import SYSTEM
    from tests.portal.conftest import KAOHSIUNG, add_org

    month = datetime.now(UTC).strftime("%Y-%m")
    firms = [add_org(site.app, f"Paged Browser {n:02d}", KAOHSIUNG) for n in range(22)]
    with session_scope(site.app) as session:
        for firm in firms:
            kpi.set_target(session=session, organization_id=firm, month=month,
                           new_clients=1, actor=SYSTEM)
    page = signed_in(browser, site, "boss@example.com")
    page.goto(f"{site.url}/kpi?month={month}")
    first = page.locator("input.target-input").first
    name = first.get_attribute("name")
    firm = int(page.input_value(f"input[name='{name.replace('new_clients', 'organization_id')}']"))
    first.fill("9")
    page.click("button:has-text('Save and go to the next page')")
    page.wait_for_url("**page=2**")
    assert "1 target saved for" in flash(page)
    assert site.api(f"/kpi/monthly?month={month}&organization_id={firm}")[
        "rows"][0]["target"] == 9
    page.context.close()
