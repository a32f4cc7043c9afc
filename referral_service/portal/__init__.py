"""The partner portal: server-rendered pages for partner staff and head office, at the site root.

The pages call the same services as the JSON API. CSRF protection covers the portal's forms
only: the API authenticates every call with a bearer key and never reads the session cookie.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import NotFound

from referral_service import errors
from referral_service.portal import views
from referral_service.portal.forms import csrf


def init_app(app: Flask) -> None:
    """Register the portal's pages, its session cookie settings and CSRF protection."""
    _configure_session_cookie(app)
    # Checked by the portal blueprint for its own POSTs (views.protect_forms); the API
    # blueprints, health probes and docs never see a CSRF check.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    # Templates are the portal's alone: keep the HTML they write tidy.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.register_blueprint(views.blp)
    app.register_error_handler(NotFound, _not_found)


def _configure_session_cookie(app: Flask) -> None:
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # Secure unless turned off for a plain-HTTP local run (tests, scripts/start.sh) or debug.
    secure = bool(app.config.get("SESSION_COOKIE_SECURE", True))
    app.config["SESSION_COOKIE_SECURE"] = secure and not app.debug


def _not_found(error: NotFound):
    """An unknown URL: an HTML page for a browser, problem+json for everyone else."""
    if request.path.startswith("/api/") or not views.wants_html():
        return errors.handle_http_exception(error)
    return views.render_error(error.code or 404, error.description)
