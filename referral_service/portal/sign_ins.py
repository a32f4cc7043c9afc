"""Head office's sign-in pages: who can sign in, invitations and new passwords by one-time
link, deactivation; and the page a link opens to choose a password (issue 16)."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask_babel import gettext

from referral_service.db import read_session, write_session
from referral_service.portal.auth import staff_required
from referral_service.portal.common import (
    PAGE_SIZE,
    blp,
    find_organization,
    page_number,
    principal,
    rendered,
)
from referral_service.portal.errors import render_error
from referral_service.portal.forms import (
    InviteForm,
    NewPasswordForm,
    SignInActionForm,
    attach_errors,
    field_resolver,
    said,
)
from referral_service.services import sign_ins
from referral_service.services.errors import NotFound, ValidationFailed


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _link(user: Any) -> str:
    token = sign_ins.password_link_token(user, secret=_secret())
    return url_for(".welcome", token=token, _external=True)


def _list_page(invite_form: InviteForm | None = None, *, general: list[str] | None = None,
               made: dict[str, str] | None = None, status: int = 200):
    """The sign-ins, the invitation form, and the link just made (shown once, here)."""
    q = (request.args.get("q") or "").strip()[:254]
    page = page_number()
    items, total = sign_ins.list_(session=read_session(), actor=principal(), page=page,
                                  page_size=PAGE_SIZE, q=q or None)
    return rendered("sign_ins.html", form=invite_form or InviteForm(formdata=None),
                    general=general or [], items=items, total=total, page=page,
                    page_size=PAGE_SIZE, q=q, made=made,
                    action=SignInActionForm(formdata=None), status=status)


@blp.get("/sign-ins")
@staff_required
def sign_in_list():
    """Everyone who can sign in (or could), with an invitation form."""
    return _list_page()


@blp.post("/sign-ins")
@staff_required
def invite():
    """Invite someone: a sign-in that works once they choose a password from their link."""
    form = InviteForm()
    if not form.validate():
        return _list_page(form, status=422)
    organization_id = None
    if form.role.data == "partner":
        if not form.organization.data:
            form.organization.errors = [gettext("Name the firm this person works for.")]
            return _list_page(form, status=422)
        organization_id, problem = find_organization(form.organization.data, principal())
        if problem:
            form.organization.errors = [problem]
            return _list_page(form, status=422)
    try:
        user = sign_ins.invite(session=write_session(), actor=principal(),
                               email=form.email.data, role=form.role.data,
                               organization_id=organization_id, name=form.name.data or None)
    except ValidationFailed as error:
        general = attach_errors(error.errors, field_resolver(form))
        return _list_page(form, general=general, status=422)
    return _list_page(made={"email": user.email, "link": _link(user), "kind": "invitation"})


@blp.post("/sign-ins/action")
@staff_required
def sign_in_action():
    """A new password link for someone (their old password stops working), or deactivate."""
    form = SignInActionForm()
    if not form.validate():
        raise NotFound("No such sign-in.")
    user_id = int(form.user_id.data)
    if form.action.data == "deactivate":
        try:
            user = sign_ins.deactivate(session=write_session(), actor=principal(),
                                       user_id=user_id)
        except ValidationFailed as error:
            return _list_page(general=[said(error.detail)], status=422)
        flash(gettext("%(email)s can no longer sign in; their sessions have ended.",
                      email=user.email), "success")
        return redirect(url_for(".sign_in_list"))
    user = sign_ins.reset(session=write_session(), actor=principal(), user_id=user_id)
    return _list_page(made={"email": user.email, "link": _link(user), "kind": "reset"})


@blp.route("/welcome/<token>", methods=["GET", "POST"])
def welcome(token: str):
    """Choose a password from a one-time link (an invitation or a reset)."""
    form = NewPasswordForm()
    try:
        if request.method == "GET" or not form.validate():
            user = sign_ins.user_for_link(session=read_session(), token=token,
                                          secret=_secret())
            return rendered("welcome.html", form=form, email=user.email,
                            status=422 if form.errors else 200)
        user = sign_ins.use_link(session=write_session(), token=token, secret=_secret(),
                                 password=form.password.data)
    except NotFound as error:
        # Unlike other 404s, say why: the person can ask for a new link.
        return render_error(404, said(error.detail), title=gettext("This link does not work"))
    except ValidationFailed as error:
        general = attach_errors(error.errors, field_resolver(form))
        return rendered("welcome.html", form=form, general=general, email=None, status=422)
    flash(gettext("Password set for %(email)s: sign in with it now.", email=user.email),
          "success")
    return redirect(url_for(".login"))
