"""The portal's languages and time zones (SPEC section 12): which one a request gets, the
switcher that changes them, and the Jinja filters that write dates, months and numbers in them.

A request's language is the one chosen with the switcher (kept in the session cookie, kept
through sign-in and sign-out, and in a signed-in user's profile, which sign-in restores),
else the browser's best Accept-Language among LANGUAGES, else English. Its time zone is the
one chosen, else the language's usual one (zh_TW: Taipei, ja: Tokyo, en: UTC). Translations
live in portal/translations/<locale>/LC_MESSAGES/messages.po (compiled .mo beside them,
committed); README "Translations" says how to update them.
"""

from __future__ import annotations

import os
from datetime import date, datetime, tzinfo
from functools import cache
from typing import Any

from babel.dates import format_datetime as babel_format_datetime
from babel.dates import format_skeleton
from babel.dates import get_timezone as zone_named
from babel.support import Translations
from flask import Flask, Response, current_app, g, redirect, request, url_for
from flask import session as web_session
from flask_babel import (
    Babel,
    format_decimal,
    format_percent,
    get_locale,
    get_timezone,
    lazy_gettext,
)
from markupsafe import Markup
from wtforms.i18n import messages_path as wtforms_messages_path

from referral_service.db import write_session
from referral_service.portal.common import blp
from referral_service.portal.forms import WORDS, PreferencesForm
from referral_service.services import auth

TRANSLATIONS = os.path.join(os.path.dirname(__file__), "translations")
# Locale -> its name in itself: a language is offered in its own words.
LANGUAGES = {"en": "English", "zh_TW": "繁體中文", "ja": "日本語"}
DEFAULT_LANGUAGE = "en"
# A browser's language tag (its first part) -> ours.
LANGUAGE_OF_TAG = {"en": "en", "zh": "zh_TW", "ja": "ja"}
# The zones of the firms and staff who use the portal (Taiwan, Japan, South-East Asia).
TIME_ZONES = {
    "Asia/Taipei": lazy_gettext("Taipei"),
    "Asia/Tokyo": lazy_gettext("Tokyo"),
    "Asia/Seoul": lazy_gettext("Seoul"),
    "Asia/Shanghai": lazy_gettext("Shanghai"),
    "Asia/Hong_Kong": lazy_gettext("Hong Kong"),
    "Asia/Singapore": lazy_gettext("Singapore"),
    "Asia/Bangkok": lazy_gettext("Bangkok"),
    "Asia/Ho_Chi_Minh": lazy_gettext("Ho Chi Minh City"),
    "Asia/Manila": lazy_gettext("Manila"),
    "Asia/Jakarta": lazy_gettext("Jakarta"),
    "Europe/Berlin": lazy_gettext("Berlin"),
    "UTC": lazy_gettext("UTC"),
}
# The switcher's choice outlives the session in a cookie of its own, for a year.
REMEMBER_COOKIE = "portal_language"
REMEMBER_SECONDS = 365 * 24 * 3600
# The switcher's fields are named preferences-*: no id clashes with a page's own form.
PREFIX = "preferences"
ZONE_OF_LANGUAGE = {"zh_TW": "Asia/Taipei", "ja": "Asia/Tokyo", "en": "UTC"}
# English keeps the portal's ISO-like house format; the others write the date their way.
ENGLISH_DATETIME = "yyyy-MM-dd HH:mm"

babel = Babel()


def init_app(app: Flask) -> None:
    """Bind Flask-Babel with the portal's choice of language and zone."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", TRANSLATIONS)
    babel.init_app(app, locale_selector=select_language, timezone_selector=select_time_zone)
    # `{% trans %}` blocks are extracted and looked up with their whitespace folded.
    app.jinja_env.policies["ext.i18n.trimmed"] = True


def select_language() -> str:
    """Return the request's language: the user's choice, else the browser's, else English."""
    chosen = web_session.get("language") or _remembered()[0]
    if chosen in LANGUAGES:
        return chosen
    # By language alone, in the browser's order: en-GB is English even when ja comes after
    # it, and every Chinese (zh-Hant-TW, zh-HK, also zh-CN) gets the Chinese there is.
    for tag, _quality in request.accept_languages:
        language = tag.lower().replace("_", "-").partition("-")[0]
        if language in LANGUAGE_OF_TAG:
            return LANGUAGE_OF_TAG[language]
    return DEFAULT_LANGUAGE


def select_time_zone() -> str:
    """Return the request's time zone: the user's choice, else the language's usual one."""
    chosen = web_session.get("time_zone") or _remembered()[1]
    if chosen in TIME_ZONES:
        return chosen
    return ZONE_OF_LANGUAGE.get(language_key(), "UTC")


def language_key() -> str:
    """Return the request's language as LANGUAGES names it ("zh_TW", not Babel's "zh_Hant_TW")."""
    locale = get_locale()
    return f"{locale.language}_{locale.territory}" if locale.territory else locale.language


@blp.before_request
def wtforms_messages() -> None:
    """Give WTForms' own messages ("This field is required.") in the request's language.

    Flask-WTF looks them up under Babel's full name (zh_Hant_TW), which WTForms' catalogues do
    not use (zh_TW): hand it the right catalogue through the attribute it caches them in.
    """
    request.wtforms_translations = _wtforms_catalogue(language_key())


@blp.after_request
def vary_by_language(response: Response) -> Response:
    """Tell caches that a page differs by the browser's language."""
    response.vary.add("Accept-Language")
    return response


@cache
def _wtforms_catalogue(language: str) -> Translations:
    return Translations.load(wtforms_messages_path(), [language], domain="wtforms")


def preferences() -> dict[str, str]:
    """Return the language and zone chosen in this session (kept when the session is renewed)."""
    return {key: web_session[key] for key in ("language", "time_zone") if key in web_session}


@blp.post("/preferences")
def set_preferences():
    """Keep the chosen language and time zone in the session, then go back to the page."""
    form = PreferencesForm(prefix=PREFIX)
    form.language.choices = list(LANGUAGES.items())
    form.time_zone.choices = zone_choices()
    # Imported here: auth imports this module (preferences() outlive a sign-in).
    from referral_service.portal.auth import safe_next

    response = redirect(safe_next(form.next.data) or url_for(".index"))
    if form.validate_on_submit():
        web_session["language"] = form.language.data
        web_session["time_zone"] = form.time_zone.data
        if g.get("user") is not None:  # kept in the profile: it follows them to any browser
            auth.set_preferences(session=write_session(), user_id=g.user.id,
                                 language=form.language.data, time_zone=form.time_zone.data)
        # Also a year on this browser, for the next visit after the browser is closed.
        response.set_cookie(
            REMEMBER_COOKIE, f"{form.language.data}|{form.time_zone.data}",
            max_age=REMEMBER_SECONDS, httponly=True, samesite="Lax",
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


def _remembered() -> tuple[str | None, str | None]:
    """Return the (language, zone) this browser kept from an earlier switch, if any."""
    language, _bar, zone = request.cookies.get(REMEMBER_COOKIE, "").partition("|")
    return language or None, zone or None


def zone_choices() -> list[tuple[str, str]]:
    """Return (zone, "Taipei (GMT+8)") for the zones offered."""
    now = datetime.now().astimezone()
    return [(zone, f"{label} ({zone_label(now, zone_named(zone))})") for zone, label in
            TIME_ZONES.items()]


def zone_label(moment: datetime, zone: tzinfo) -> str:
    """Return how a zone is named beside a time: "UTC", "GMT+8", "GMT+5:30"."""
    offset = moment.astimezone(zone).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    if minutes == 0 and str(zone) == "UTC":
        return "UTC"
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")


@blp.app_template_filter()
def local_time(value: datetime | None) -> str:
    """Write a moment in the user's language and time zone, with the zone named."""
    if value is None:
        return ""
    zone, locale = get_timezone(), get_locale()
    if language_key() == DEFAULT_LANGUAGE:
        text = babel_format_datetime(value, ENGLISH_DATETIME, tzinfo=zone, locale=locale)
    else:
        text = (format_skeleton("yMMMd", value, tzinfo=zone, locale=locale) + " "
                + format_skeleton("Hm", value, tzinfo=zone, locale=locale))
    return f"{text} {zone_label(value, zone)}"


@blp.app_template_filter()
def local_date(value: date | None) -> str:
    """Write a calendar date in the user's language (no zone: a date is not a moment)."""
    if value is None:
        return ""
    if language_key() == DEFAULT_LANGUAGE:
        return value.isoformat()
    return format_skeleton("yMMMd", value, locale=get_locale())


@blp.app_template_filter()
def month_label(value: str | None) -> str:
    """Write a "YYYY-MM" month as the user reads it: "December 2026", "2026年12月"."""
    if not value:
        return ""
    try:
        first = date(int(value[:4]), int(value[5:7]), 1)
    except ValueError:
        return value
    return format_skeleton("yMMMM", first, locale=get_locale())


@blp.app_template_filter()
def number(value: Any, digits: int = 0) -> str:
    """Write a number with the user's grouping and decimal signs."""
    if value is None:
        return "–"
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern)


@blp.app_template_filter()
def amount(value: Any) -> str:
    """Write a money amount with the user's signs, cents only when there are some."""
    return "–" if value is None else format_decimal(value, format="#,##0.##")


@blp.app_template_filter()
def percent(value: float | None) -> str:
    """Write a share (0.25) as a whole percentage in the user's language ("25%")."""
    return "–" if value is None else format_percent(value)


@blp.app_template_global()
def zone_label_now() -> str:
    """Return how the user's time zone is named now ("GMT+8", "UTC")."""
    return zone_label(datetime.now().astimezone(), get_timezone())


@blp.app_template_global()
def status_label(value: str | None) -> str:
    """Return a stored status, kind or side in the user's language."""
    return str(WORDS.get(value or "", value or ""))


@blp.app_template_global()
def time_tag(value: datetime | None) -> Markup:
    """Return a <time> element for a moment, written for the user."""
    if value is None:
        return Markup("")
    return Markup('<time datetime="{}">{}</time>').format(value.isoformat(), local_time(value))


# For the whole app: an unknown URL's page (errors.not_found) is outside the blueprint.
@blp.app_context_processor
def language_context() -> dict[str, Any]:
    """Give every page its language (for <html lang>) and the switcher's form."""
    locale = language_key()
    form = PreferencesForm(formdata=None, prefix=PREFIX, language=locale,
                           time_zone=str(get_timezone()),
                           # Back to this page after a switch (a form's POST: its page).
                           next=request.full_path.rstrip("?") if request.method == "GET"
                           else request.path)
    form.language.choices = list(LANGUAGES.items())
    form.time_zone.choices = zone_choices()
    return {"html_lang": locale.replace("_", "-"), "preferences_form": form}
