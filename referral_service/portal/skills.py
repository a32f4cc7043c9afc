"""Head office's skill vocabulary (SPEC section 8): the skills firms offer with their other
names; adding and removing an alias; merging one skill into another, confirmed first."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext, ngettext

from referral_service.db import read_session, write_session
from referral_service.errors import status_of
from referral_service.portal.auth import staff_required
from referral_service.portal.common import blp, principal, rendered
from referral_service.portal.forms import AliasForm, MergeForm, attach_errors, field_resolver
from referral_service.services import skills
from referral_service.services.errors import ServiceError, ValidationFailed

# The service's field names, as the forms name them
MERGE_FIELDS = {"from": "source", "into": "target"}


def skills_page(*, alias_form: AliasForm | None = None, merge_form: MergeForm | None = None,
                confirming: bool = False, general: list[str] | None = None, status: int = 200):
    """Render the skills with their aliases and the two forms."""
    return rendered("skills.html", items=skills.list_(session=read_session()),
                    alias_form=alias_form or AliasForm(prefix="alias"),
                    merge_form=merge_form or MergeForm(prefix="merge"),
                    confirming=confirming, general=general or [], status=status)


@blp.get("/skills")
@staff_required
def skill_list():
    """Every skill firms offer, how many offer it and its other names."""
    return skills_page()


@blp.post("/skills/aliases")
@staff_required
def skill_alias_add():
    """Add another name of a skill."""
    form = AliasForm(prefix="alias")
    if not form.validate():
        return skills_page(alias_form=form, status=422)
    try:
        row = skills.create_alias(session=write_session(), actor=principal(),
                                  alias=form.alias.data, skill=form.skill.data)
    except ServiceError as error:
        return skills_page(alias_form=form, general=_beside(error, form, {}),
                           status=status_of(error))
    flash(gettext("“%(alias)s” now stands for %(skill)s.", alias=row.alias, skill=row.skill),
          "success")
    return redirect(url_for(".skill_list"))


@blp.post("/skills/aliases/remove")
@staff_required
def skill_alias_remove():
    """Remove another name of a skill (the form's CSRF token is checked for every POST)."""
    alias = request.form.get("alias", "")
    try:
        skills.delete_alias(session=write_session(), actor=principal(), alias=alias)
    except ServiceError as error:
        flash(error.detail, "error")
    else:
        flash(gettext("“%(alias)s” is no longer another name of a skill.", alias=alias),
              "success")
    return redirect(url_for(".skill_list"))


@blp.post("/skills/merge")
@staff_required
def skill_merge():
    """Merge one skill into another, once the user has confirmed it."""
    form = MergeForm(prefix="merge")
    if not form.validate() or not form.confirm.data:
        # First press (or the box left unticked): ask before changing every firm's tags.
        if form.is_submitted() and request.form.get("merge-confirming"):
            form.confirm.errors = [*form.confirm.errors, gettext("Tick the box to confirm.")]
        valid = not (form.source.errors or form.target.errors)
        return skills_page(merge_form=form, confirming=valid,
                           status=200 if valid and not form.confirm.errors else 422)
    try:
        merged = skills.merge(session=write_session(), actor=principal(),
                              from_=form.source.data, into=form.target.data)
    except ServiceError as error:
        return skills_page(merge_form=form, general=_beside(error, form, MERGE_FIELDS),
                           status=status_of(error))
    flash(ngettext("%(source)s was merged into %(target)s: %(num)d firm's tags changed.",
                   "%(source)s was merged into %(target)s: %(num)d firms' tags changed.",
                   merged.organizations, source=merged.from_, target=merged.into),
          "success")
    return redirect(url_for(".skill_list"))


def _beside(error: ServiceError, form, names: dict[str, str]) -> list[str]:
    """Put a service's refusal beside the field it names; return what names no field."""
    errors = error.errors if isinstance(error, ValidationFailed) else error.extra.get("errors")
    if errors:
        return attach_errors(errors, field_resolver(form, names))
    field = form.target if isinstance(form, MergeForm) else form.skill
    if "(from)" in error.detail:
        field = form.source
    field.errors = [*field.errors, error.detail]
    return []


