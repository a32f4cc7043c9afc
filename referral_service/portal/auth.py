"""Who is signed in: sign-in and sign-out, the session cookie's user, the login and staff
checks, and what every portal POST must carry (CSRF check). Security headers: headers.py."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, flash, g, redirect, request, url_for
from flask import session as web_session
from flask_babel import gettext
from werkzeug.exceptions import BadRequest

from referral_service import limits
from referral_service.db import read_session, write_session
from referral_service.portal import i18n
from referral_service.portal.common import blp, principal, rendered
from referral_service.portal.forms import LoginForm, csrf
from referral_service.services import auth
from referral_service.services.errors import Forbidden

_UNSAFE_IN_NEXT = re.compile(r"[\x00-\x1f\x7f\\]")


def password_stamp(password_hash: str) -> str:
    """Return the session's stamp of a password hash."""
    # Changing the password changes the stamp, which signs out every other session.
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@blp.before_request
def load_user() -> Response | None:
    """Resolve the session cookie into g.user and g.principal (None when signed out)."""
    g.user = g.principal = None
    user_id = web_session.get("user_id")
    if user_id is None:
        return None
    user = auth.get_user(session=read_session(), user_id=user_id)
    max_age = current_app.config["PORTAL_SESSION_HOURS"] * 3600
    fresh = time.time() - web_session.get("signed_in_at", 0) < max_age
    # A cookie from before sign-out, a new password or deactivation (any copy of it) is of
    # an earlier epoch; cookies made before epochs existed say none, which was epoch 0.
    if (user is None or web_session.get("stamp") != password_stamp(user.password_hash)
            or web_session.get("epoch", 0) != user.session_epoch or not fresh):
        kept = i18n.preferences()
        web_session.clear()
        web_session.update(kept)
        flash(gettext("Your session has ended; please sign in again."), "info")
        return None
    g.user, g.principal = user, auth.principal_for_user(user)
    return None


@blp.before_request
def refuse_nul_characters() -> None:
    """Refuse form text holding NUL characters (no database stores them) with a 400 page."""
    if any("\x00" in value for value in request.form.values()):
        raise BadRequest("The form holds characters that cannot be stored.")


@blp.before_request
def protect_forms() -> None:
    """Refuse a portal POST without a valid CSRF token (the API is not checked here)."""
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send a signed-out visitor to the sign-in page, then back here."""

    @wraps(view)
    def wrapped(**kwargs: Any) -> Any:
        if g.principal is None:
            target = request.full_path if request.method == "GET" else None
            return redirect(url_for(".login", next=target))
        return view(**kwargs)

    return wrapped


def staff_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Head office only; a partner gets 403."""

    @wraps(view)
    def wrapped(**kwargs: Any) -> Any:
        if not principal().is_staff:
            # The API's wording ("head office or the CRM") means nothing to a partner's staff.
            raise Forbidden(gettext("This page is for head office. Your sign-in shows your own "
                                    "firm's pages: use the menu above, or ask head office "
                                    "to do this."))
        return view(**kwargs)

    return login_required(wrapped)


def safe_next(target: str | None) -> str | None:
    """Return `target` if it is a path on this site (never another host), else None."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    # A control character (CR/LF would split the Location header) or a backslash (which
    # browsers read as "/") has no place in a path of ours.
    if _UNSAFE_IN_NEXT.search(target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@blp.get("/")
def index():
    """The site root: the dashboard when signed in, else the sign-in page."""
    return redirect(url_for(".dashboard" if g.principal else ".login"))


@blp.route("/login", methods=["GET", "POST"])
@limits.login_limit()
def login():
    """Sign in with e-mail and password."""
    if g.principal is not None:
        return redirect(url_for(".dashboard"))
    form = LoginForm(next=request.args.get("next"))
    if not form.validate_on_submit():
        return rendered("login.html", form=form, status=422 if form.errors else 200)
    limits.check_account_lockout(form.email.data)  # 429 while locked, before any check
    found = auth.authenticate_user(session=read_session(), email=form.email.data,
                                   password=form.password.data)
    if found is None:
        limits.record_failed_sign_in(form.email.data)
        form.password.errors = [gettext("That e-mail and password do not match an active account.")]
        return rendered("login.html", form=form, status=422)
    limits.forget_failed_sign_ins(form.email.data)
    user = auth.get_user(session=read_session(), user_id=found.user_id)
    # A new session on sign-in: nothing set before it (or planted by someone else) survives,
    # but the language and zone: the user's profile's if they chose some, else this browser's.
    kept = i18n.preferences()
    if user.language and user.time_zone:
        kept = {"language": user.language, "time_zone": user.time_zone}
    web_session.clear()
    web_session.update(kept, user_id=user.id, stamp=password_stamp(user.password_hash),
                       epoch=user.session_epoch, signed_in_at=time.time())
    flash(gettext("Signed in as %(email)s.", email=user.email), "success")
    return redirect(safe_next(form.next.data) or url_for(".dashboard"))


@blp.post("/logout")
def logout():
    """Sign out: every session of this user ends on the server, not only this cookie."""
    if g.user is not None:
        user_id, actor = g.user.id, principal()
        auth.end_sessions(session=write_session(), user_id=user_id, actor=actor)
    kept = i18n.preferences()
    web_session.clear()
    web_session.update(kept)
    flash(gettext("You are signed out."), "success")
    return redirect(url_for(".login"))
