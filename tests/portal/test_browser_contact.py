"""Issue 16 in Chromium: from a match list, a candidate firm's contact is one click away."""

from __future__ import annotations

import pytest
import requests

from tests.portal.test_browser import PHONE, browser, signed_in, site  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_candidates_contact_is_one_click_from_the_match_list(browser, site):  # noqa: F811
    network = site.network
    with requests.patch(f"{site.url}/api/v1/organizations/{network.beta}", timeout=10,
                        headers=site.api_headers,
                        json={"contact": {"name": "Bo Chen", "email": "bo@beta.example",
                                          "phone": "+886 6 765 4321"}}) as response:
        assert response.status_code == 200, response.text
    page = signed_in(browser, site, "alpha@example.com", viewport=PHONE)
    page.goto(f"{site.url}/refer")
    page.fill("#client_name", "Contact Seekers Ltd")
    page.fill("#skills", "anodizing")
    page.fill("#city", "Tainan")
    page.fill("#country", "TW")
    page.click("button:has-text('Find receiving firms')")
    beta = page.locator("li.candidate", has_text="Beta Finishing")
    beta.wait_for()
    with page.expect_popup() as popup:  # one click, the list stays where it was
        beta.locator("a:has-text('profile and contact')").click()
    profile = popup.value
    profile.wait_for_load_state()
    contact = profile.locator("#contact")
    assert "Bo Chen" in contact.inner_text()
    assert contact.get_by_role("link", name="bo@beta.example").get_attribute(
        "href") == "mailto:bo@beta.example"
    assert contact.get_by_role("link", name="+886 6 765 4321").get_attribute(
        "href") == "tel:+88667654321"
    profile.close()
    page.context.close()
