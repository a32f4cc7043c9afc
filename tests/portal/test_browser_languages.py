"""Switching the portal's language in Chromium, on a phone and on a desktop (issue 16)."""

from __future__ import annotations

import pytest

from tests.portal.test_browser import PHONE, browser, flash, signed_in, site  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1280, "height": 900}


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_the_switcher_changes_language_and_zone_and_keeps_them(browser, site, viewport):  # noqa: F811
    from models import User
    from referral_service.db import session_scope

    # The choice is kept in the user's profile too: start each run from none.
    with session_scope(site.app) as session:
        session.get(User, site.network.partner_user).language = None
        session.commit()
    page = signed_in(browser, site, "alpha@example.com", viewport=viewport)
    assert page.get_attribute("html", "lang") == "en"
    switcher = page.locator("footer.preferences")
    switcher.scroll_into_view_if_needed()
    assert switcher.is_visible()
    box = switcher.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"] + 1  # no sideways scroll
    page.select_option("#preferences-language", "ja")
    page.select_option("#preferences-time_zone", "Asia/Tokyo")
    page.click("footer.preferences button[type=submit]")
    page.wait_for_url("**/dashboard")
    assert page.get_attribute("html", "lang") == "ja"
    assert page.locator("nav[aria-label='メインメニュー']").is_visible()
    assert "ダッシュボード" in page.inner_text("header")
    # Another page, the choice kept; then Traditional Chinese, with Taipei's time.
    page.click("header nav a[href='/referrals']")
    page.wait_for_url("**/referrals")
    assert page.get_attribute("html", "lang") == "ja"
    page.select_option("#preferences-language", "zh_TW")
    page.select_option("#preferences-time_zone", "Asia/Taipei")
    page.click("footer.preferences button[type=submit]")
    page.wait_for_url("**/referrals")
    assert page.get_attribute("html", "lang") == "zh-TW"
    assert page.inner_text("h1") == "Alpha Machining 的轉介"
    assert page.input_value("#preferences-time_zone") == "Asia/Taipei"
    # No page is wider than the phone in Chinese either.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], width
    # Signing out keeps the language.
    page.click("header button[type=submit]")
    page.wait_for_url("**/login")
    assert page.get_attribute("html", "lang") == "zh-TW"
    assert "您已登出。" in flash(page)
