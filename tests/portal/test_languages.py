"""The portal in English, Traditional Chinese and Japanese (SPEC section 12): catalogues complete,
the language from the switcher or the browser, dates, months and numbers in the user's locale
and time zone, and Chinese and Japanese text shown as typed."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.portal.conftest import KAOHSIUNG, add_org, csrf_token
from tests.portal.test_visits import api_visit, post_visit, sam, team, visit_form, visit_id_of  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
PORTAL = ROOT / "referral_service" / "portal"
TRANSLATIONS = PORTAL / "translations"
LOCALES = ("zh_Hant_TW", "ja")  # Babel names zh-TW zh_Hant_TW; its folder says so
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]")
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
TEXT_ATTRIBUTE = re.compile(r'\b(?:aria-label|title|alt|placeholder|data-label)="([^"]*)"')
TAG = re.compile(r"<[^>]*>", re.S)
WORD = re.compile(r"[A-Za-z]{2}")
ZH = {"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"}
JA = {"Accept-Language": "ja,en-US;q=0.7"}


@pytest.fixture(scope="module")
def fresh_template(tmp_path_factory) -> Path:
    """Extract the portal's messages now, as the README's pybabel command does."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
         str(ROOT / "babel.cfg"), "-k", "lazy_gettext", "-k", "_l", "--no-location",
         "-o", str(pot), str(PORTAL)],
        check=True, capture_output=True)
    return pot


def _catalogue(locale: str):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=locale)


def _strings(message) -> tuple[str, ...]:
    return (message.string,) if isinstance(message.string, str) else tuple(message.string)


def _ids(message) -> tuple[str, ...]:
    return (message.id,) if isinstance(message.id, str) else tuple(message.id)


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_of_a_fresh_extraction_is_translated(fresh_template, locale):
    with open(fresh_template, "rb") as handle:
        wanted = {message.id if isinstance(message.id, str) else message.id[0]
                  for message in read_po(handle) if message.id}
    catalogue = _catalogue(locale)
    translated = {}
    for message in catalogue:
        if message.id:
            key = message.id if isinstance(message.id, str) else message.id[0]
            translated[key] = message
    untranslated = sorted(key for key in wanted
                          if key not in translated or not all(_strings(translated[key])))
    fuzzy = sorted(key for key, message in translated.items() if message.fuzzy)
    assert not untranslated, f"{locale}: no translation for {untranslated}"
    assert not fuzzy, f"{locale}: fuzzy (unchecked) translations {fuzzy}"
    assert len(wanted) > 400  # the extraction found the portal's text at all


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_every_placeholder(locale):
    for message in _catalogue(locale):
        if not message.id:
            continue
        wanted = set(PLACEHOLDER.findall(" ".join(_ids(message))))
        for text in _strings(message):
            assert set(PLACEHOLDER.findall(text)) == wanted, (message.id, text)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_compiled_catalogue_matches_its_source(locale):
    def pairs(catalogue):
        return {_ids(message): _strings(message) for message in catalogue if message.id}

    source = pairs(_catalogue(locale))
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo", "rb") as handle:
        compiled = pairs(read_mo(handle))
    assert compiled == source, "run pybabel compile (README, Translations)"


def test_no_template_holds_text_outside_a_translation():
    for path in sorted((PORTAL / "templates").rglob("*.html")):
        bare = JINJA.sub(" ", path.read_text())
        words = [value for value in TEXT_ATTRIBUTE.findall(bare) if WORD.search(value)]
        words += [chunk.strip() for chunk in TAG.sub("\n", bare).split("\n")
                  if WORD.search(chunk)]
        assert not words, f"{path.name}: not wrapped in _() or trans: {words}"


def test_english_is_the_default_without_accept_language(client):
    response = client.get("/login")
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page and "<h1>Sign in</h1>" in page
    assert "Accept-Language" in response.headers["Vary"]


@pytest.mark.parametrize(("headers", "lang", "heading"), [
    (ZH, "zh-TW", "<h1>登入</h1>"),
    (JA, "ja", "<h1>サインイン</h1>"),
    ({"Accept-Language": "de-DE,de;q=0.9"}, "en", "<h1>Sign in</h1>"),
    ({"Accept-Language": "en-GB,ja;q=0.5"}, "en", "<h1>Sign in</h1>"),
    ({"Accept-Language": "fr,zh-Hant-TW;q=0.8,en;q=0.5"}, "zh-TW", "<h1>登入</h1>"),
    ({"Accept-Language": "ja-JP"}, "ja", "<h1>サインイン</h1>"),
])
def test_the_browsers_language_picks_the_page_language(client, headers, lang, heading):
    page = client.get("/login", headers=headers).get_data(as_text=True)
    assert f'<html lang="{lang}">' in page and heading in page


def test_form_errors_and_flash_messages_are_translated(client, network):
    login = client.get("/login", headers=JA).get_data(as_text=True)
    response = client.post("/login", headers=JA, data={
        "csrf_token": csrf_token(login), "email": "alpha@example.com", "password": "wrong"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "メールアドレスとパスワードが有効なアカウントと一致しません。" in page
    assert "次の点を修正してください" in page  # the error summary's heading
    empty = client.post("/login", headers=ZH, data={"csrf_token": csrf_token(login)})
    # WTForms' own messages come from its catalogues, in the same language.
    assert "密碼：此欄位是必需的。" in empty.get_data(as_text=True)


def _switch(client, language: str, zone: str, back: str = "/login") -> None:
    page = client.get(back, follow_redirects=True).get_data(as_text=True)
    token = re.search(r'name="preferences-csrf_token" type="hidden" value="([^"]+)"', page)
    response = client.post("/preferences", data={
        "preferences-csrf_token": token.group(1), "preferences-language": language,
        "preferences-time_zone": zone, "preferences-next": back})
    assert response.status_code == 302 and response.headers["Location"] == back


def test_the_switcher_outlives_sign_in_and_sign_out(client, partner):
    _switch(client, "ja", "Asia/Tokyo", back="/dashboard")
    page = partner.text("/dashboard")
    assert '<html lang="ja">' in page and "ダッシュボード" in page
    assert '<option selected value="ja">日本語</option>' in page
    token = csrf_token(page)
    client.post("/logout", data={"csrf_token": token})
    signed_out = client.get("/login").get_data(as_text=True)
    assert '<html lang="ja">' in signed_out and "サインアウトしました。" in signed_out
    # The choice wins over the browser's language.
    assert '<html lang="ja">' in client.get("/login", headers=ZH).get_data(as_text=True)


def test_the_choice_outlives_the_browser_session(app, client):
    _switch(client, "zh_TW", "Asia/Singapore")
    cookie = client.get_cookie("portal_language")
    assert cookie.value == "zh_TW|Asia/Singapore" and cookie.http_only
    fresh = app.test_client()  # a browser reopened: no session, the cookie kept
    fresh.set_cookie("portal_language", cookie.value)
    page = fresh.get("/login").get_data(as_text=True)
    assert '<html lang="zh-TW">' in page and '<option selected value="Asia/Singapore">' in page


def test_an_unknown_language_or_zone_changes_nothing(client):
    _switch(client, "xx", "Mars/Base")
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)


def test_times_show_in_the_chosen_zone_and_language(app, client, partner, network, refer_to):
    from models import Referral
    from referral_service.db import session_scope

    referral_id = refer_to(network.beta, network.alpha, client="Zone Test Co")
    with session_scope(app) as session:
        session.get(Referral, referral_id).created_at = datetime(2026, 3, 31, 18, 30, tzinfo=UTC)
        session.commit()
    english = partner.text(f"/referrals/{referral_id}")
    assert "2026-03-31 18:30 UTC" in english
    _switch(client, "zh_TW", "Asia/Taipei")
    chinese = partner.text(f"/referrals/{referral_id}")
    assert "2026年4月1日 02:30 GMT+8" in chinese  # the next day in Taipei
    assert 'datetime="2026-03-31T18:30:00+00:00"' in chinese
    _switch(client, "ja", "Asia/Bangkok")
    assert "2026年4月1日 1:30 GMT+7" in partner.text(f"/referrals/{referral_id}")


def test_the_language_sets_the_usual_zone_until_one_is_chosen(app, client, partner, network,
                                                              refer_to):
    from models import Referral
    from referral_service.db import session_scope

    referral_id = refer_to(network.beta, network.alpha, client="Tokyo Time Co")
    with session_scope(app) as session:
        session.get(Referral, referral_id).created_at = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
        session.commit()
    page = partner.client.get(f"/referrals/{referral_id}", headers=JA).get_data(as_text=True)
    assert "2026年12月2日 0:00 GMT+9" in page


def test_kpi_numbers_and_months_follow_the_locale(app, admin, network):
    from referral_service.db import session_scope
    from referral_service.services import kpi
    from referral_service.services.auth import SYSTEM

    with session_scope(app) as session:
        kpi.set_target(session=session, organization_id=network.alpha, month="2026-03",
                       new_clients=12500, actor=SYSTEM)
    english = admin.text("/kpi?month=2026-03")
    assert "New-client KPI, March 2026" in english and ">12,500<" in english
    japanese = admin.client.get("/kpi?month=2026-03", headers=JA).get_data(as_text=True)
    assert "新規顧客 KPI（2026年3月）" in japanese
    assert ">12,500<" in japanese and "ダウンロード" in japanese
    chinese = admin.client.get("/kpi?month=2026-03", headers=ZH).get_data(as_text=True)
    assert "新客戶 KPI，2026年3月" in chinese and "下載 CSV" in chinese


def test_chinese_and_japanese_text_is_shown_and_matched(app, admin, network):
    taiwanese = add_org(app, "台灣精密股份有限公司", KAOHSIUNG, skills=["陽極處理"],
                        description="鋁合金外殼的硬質陽極處理與噴砂。")
    japanese = add_org(app, "東洋メッキ工業株式会社", KAOHSIUNG, skills=["めっき"],
                       description="アルミ部品の硬質アルマイト処理を行います。")
    organizations = admin.client.get("/organizations", headers=ZH).get_data(as_text=True)
    assert "台灣精密股份有限公司" in organizations and "東洋メッキ工業株式会社" in organizations
    profile = admin.text(f"/organizations/{japanese}")
    assert "アルミ部品の硬質アルマイト処理を行います。" in profile
    match = admin.post("/match", {"description": "鋁合金外殼 陽極處理", "skills": "陽極處理",
                                  "latitude": "22.63", "longitude": "120.30", "limit": "5",
                                  "kinds": ["partner", "affiliate"]}, headers=ZH)
    page = match.get_data(as_text=True)
    assert match.status_code == 200, page[:2000]
    first = page.split('<li class="candidate">')[1]
    assert '<strong class="name">台灣精密股份有限公司</strong>' in first
    assert "具備 陽極處理。" in first and "公里外的據點提供服務" in first
    assert f'href="/organizations/{taiwanese}"' in first and '<html lang="zh-TW">' in page


def test_a_visit_is_logged_in_the_users_time_zone(app, sam, admin_headers):  # noqa: F811
    _switch(sam.client, "zh_TW", "Asia/Taipei", back="/visits/new")
    form = sam.text("/visits/new")
    assert "您的時間，GMT+8。" in form
    response = post_visit(sam, visit_form(visited_at="2025-11-03T09:30"))
    body = api_visit(app.test_client(), admin_headers, visit_id_of(response))
    assert body["visited_at"].startswith("2025-11-03T01:30")  # 09:30 in Taipei
    assert "2025年11月3日 09:30 GMT+8" in sam.text(f"/visits/{body['id']}")


def test_error_pages_speak_the_users_language(client):
    page = client.get("/no-such-page", headers={"Accept": "text/html", **JA})
    text = page.get_data(as_text=True)
    assert page.status_code == 404 and '<html lang="ja">' in text
    assert "<h1>見つかりません</h1>" in text and "閲覧権限がありません" in text


@pytest.mark.parametrize(("font", "legend"), [
    (None, ["Target", "Credits", "Credits, target met"]),  # no CJK font: English, not boxes
    ("DejaVu Sans", ["目標", "実績", "実績（目標達成）"]),
])
def test_chart_words_follow_the_language_when_they_can_be_drawn(app, monkeypatch, font, legend):
    import matplotlib

    from referral_service.portal import charts

    monkeypatch.setitem(matplotlib.rcParams, "font.family", matplotlib.rcParams["font.family"])
    monkeypatch.setattr(charts, "cjk_font", lambda: font)
    rows = [{"organization_name": "東洋メッキ工業株式会社", "new_client_credits": 3, "target": 2}]
    with app.test_request_context("/kpi/chart.png", headers=JA), charts.in_language():
        figure = charts.month_figure(rows, "2026-03")
    axes = figure.axes[0]
    assert [text.get_text() for text in axes.get_legend().get_texts()] == legend
    assert axes.get_title(loc="left").startswith("Credits" if font is None else "2026年3月")


@pytest.mark.parametrize("headers", [ZH, JA], ids=["zh-TW", "ja"])
def test_every_page_renders_in_each_language(admin, partner, network, refer_to, headers):
    referral_id = refer_to(network.beta, network.alpha, client="各頁面測試有限公司")
    lang = "zh-TW" if headers is ZH else "ja"
    pages = {admin: ["/dashboard", "/referrals", "/refer", "/organizations", "/match", "/kpi",
                     "/kpi?level=department", "/kpi?level=person", "/visits", "/visits/new",
                     "/leads", "/people", "/targets", "/sign-ins", "/organizations/new",
                     f"/organizations/{network.alpha}", f"/referrals/{referral_id}"],
             partner: ["/dashboard", "/referrals", "/profile", f"/referrals/{referral_id}",
                       "/people", "/targets", "/visits", "/leads"]}
    for portal, paths in pages.items():
        for path in paths:
            response = portal.client.get(path, headers=headers, follow_redirects=True)
            page = response.get_data(as_text=True)
            assert response.status_code == 200, (path, page[:1500])
            assert f'<html lang="{lang}">' in page, path
    assert "各頁面測試有限公司" in admin.client.get(f"/referrals/{referral_id}",
                                                    headers=headers).get_data(as_text=True)


def test_the_language_chosen_is_kept_in_the_profile_and_follows_the_user(app, network):
    """SPEC section 12: chosen by the user, kept in their profile."""
    from models import User
    from referral_service.db import session_scope
    from tests.portal.conftest import PASSWORD, Portal, csrf_token

    here = Portal(app.test_client(), network.partner_user)
    page = here.text("/dashboard")
    switched = here.client.post("/preferences", data={
        "preferences-language": "ja", "preferences-time_zone": "Asia/Tokyo",
        "preferences-next": "/dashboard", "csrf_token": csrf_token(page)})
    assert switched.status_code == 302
    with session_scope(app, write=False) as session:
        user = session.get(User, network.partner_user)
        assert (user.language, user.time_zone) == ("ja", "Asia/Tokyo")
    # Another browser, English by its Accept-Language: signing in brings the choice along.
    there = app.test_client()
    login = there.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="en"' in login
    signed = there.post("/login", headers={"Accept-Language": "en"}, data={
        "email": "alpha@example.com", "password": PASSWORD, "csrf_token": csrf_token(login)})
    assert signed.status_code == 302
    dashboard = there.get("/dashboard", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="ja"' in dashboard
