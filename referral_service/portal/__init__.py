"""The partner portal: server-rendered pages for partner staff and head office, at the site root.

The pages call the same services as the JSON API. CSRF protection covers the portal's forms
only: the API authenticates every call with a bearer key and never reads the session cookie.

One blueprint (`portal`, in common.py) holds every page; the modules register on it by area:
auth (sign-in, the session's user, CSRF), errors (error pages), partner (dashboard,
referrals, refer, profiles), head_office (organizations, match, KPI, charts), sales (log a
visit, visits, leads), people (an organization's people and departments), targets
(target proposals and decisions), sign_ins (head office's sign-ins; a one-time link's
password page) and skills (head office's skill aliases and merges).
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import NotFound

# Imported for their routes and handlers, which they register on the blueprint.
from referral_service.portal import (  # noqa: F401
    auth,
    errors,
    head_office,
    i18n,
    partner,
    people,
    sales,
    sign_ins,
    skills,
    targets,
)
from referral_service.portal.common import blp
from referral_service.portal.forms import csrf


def init_app(app: Flask) -> None:
    """Register the portal's pages, its session cookie settings and CSRF protection."""
    _configure_session_cookie(app)
    # Checked by the portal blueprint for its own POSTs (auth.protect_forms); the API
    # blueprints, health probes and docs never see a CSRF check.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    i18n.init_app(app)
    # Templates are the portal's alone: keep the HTML they write tidy.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.register_blueprint(blp)
    app.register_error_handler(NotFound, errors.not_found)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, which makes its signer only for a request that sends
    the cookie: API calls never do, and building the signer on each was 1.4% of a worker's
    CPU in POST /referrals (py-spy, bench_kpi's creation run)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """The session the request's cookie holds; a new, empty one if it sends none."""
        if app.secret_key and app.config["SESSION_COOKIE_NAME"] not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def _configure_session_cookie(app: Flask) -> None:
    app.session_interface = SessionInterface()
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # Secure unless turned off for a plain-HTTP local run (tests, scripts/start.sh) or debug.
    secure = bool(app.config.get("SESSION_COOKIE_SECURE", True))
    app.config["SESSION_COOKIE_SECURE"] = secure and not app.debug
