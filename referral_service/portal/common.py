"""What the portal's pages share: the blueprint, the signed-in principal, paging, rendering,
firm names and the match form's glue."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from jinja2 import pass_context
from marshmallow import ValidationError
from wtforms import Form

from referral_service.db import read_session
from referral_service.extensions import geocoder, match_index, match_weights
from referral_service.portal.forms import (
    LogoutForm,
    attach_errors,
    error_summary,
    field_resolver,
    has_errors,
    split_skills,
)
from referral_service.schemas.base import MAX_ID, MAX_PAGE, MONTH_PATTERN
from referral_service.schemas.matching import MatchRequestSchema, MatchResponseSchema
from referral_service.services import matching, organizations
from referral_service.services.auth import Principal
from referral_service.services.errors import NotFound, ValidationFailed

# One blueprint for every page: endpoints are portal.<view>, whichever module holds the view.
# Its root is this package, so templates/ and static/ are found beside this file.
blp = Blueprint("portal", __name__, template_folder="templates", static_folder="static",
                static_url_path="/portal/static")

# Rows on a page of the portal's lists (the API's page sizes are its contract's, not these).
PAGE_SIZE = 20
# How a lifecycle move reads on a button, and in the message after it.
MOVES = {
    "accepted": (_l("Accept"), _l("Referral #%(id)s accepted.")),
    "declined": (_l("Decline"), _l("Referral #%(id)s declined.")),
    "converted": (_l("Mark won: the client signed"), _l("Referral #%(id)s marked won.")),
    "lost": (_l("Mark lost"), _l("Referral #%(id)s marked lost.")),
    "withdrawn": (_l("Withdraw"), _l("Referral #%(id)s withdrawn.")),
}
# The moves that cannot be undone: each asks for a confirmation first.
FINAL_MOVES = frozenset({"declined", "converted", "lost", "withdrawn"})
# Where a service's or the shared schema's field name differs from the need form's.
NEED_ALIASES = {"location": "city", "client": "client_name", "name": "client_name",
                "external_ref": "client_ref", "receiver_organization_id": "receiver",
                "referrer_organization_id": "referrer", "new_client_site": "new_site_label"}


def principal() -> Principal:
    """Return who is signed in (views behind login_required only)."""
    return g.principal


def rendered(template: str, *, status: int = 200, **context: Any):
    """Render a page with the status a form result calls for (422 when it has errors)."""
    return render_template(f"portal/{template}", **context), status


def page_number() -> int:
    """Return the ?page= argument, bounded."""
    page = request.args.get("page", 1, type=int) or 1
    return min(max(page, 1), MAX_PAGE)


def organization_names(ids: set[int]) -> dict[int, str]:
    """Return the names of the firms in `ids`."""
    return organizations.names(session=read_session(), organization_ids=ids)


def names_for(rows: list[Any]) -> dict[int, str]:
    """Return the names of both parties of the referrals in `rows`."""
    ids = {row.referrer_organization_id for row in rows}
    ids |= {row.receiver_organization_id for row in rows}
    return organization_names(ids)


def find_organization(text: str, actor: Principal) -> tuple[int | None, str | None]:
    """Resolve a firm typed by id or by (part of) its name; return (id, error message)."""
    text = text.strip().lstrip("#")
    if text.isdigit() and 1 <= int(text) <= MAX_ID:
        try:
            organizations.get(session=read_session(), organization_id=int(text), actor=actor)
        except NotFound:
            return None, gettext("No firm has id %(id)s.", id=text)
        return int(text), None
    found, total = organizations.list_(session=read_session(), actor=actor, page=1,
                                       page_size=10, q=text)
    exact = [o for o in found if o.name.casefold() == text.casefold()]
    if len(exact) == 1 or total == 1:
        return (exact or found)[0].id, None
    if total == 0:
        return None, gettext("No firm's name contains “%(text)s”.", text=text)
    return None, gettext("%(count)s firms match “%(text)s”; type more of the name, or the "
                         "firm's id.", count=total, text=text)


def need_request(form: Any, **extra: Any) -> dict[str, Any]:
    """Return the match request of a need form, before the shared schema checks it."""
    floor = form.min_skill_fit.data  # percent on the form, a share in the request
    body: dict[str, Any] = {
        "skills": split_skills(form.skills.data),
        "description": (form.description.data or "").strip(),
        "location": form.location(),
        "min_skill_fit": None if floor is None else floor / 100,
        **extra,
    }
    return {key: value for key, value in body.items() if value is not None}


def run_match(form: Any, body: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """Check a match request with the API's schema and run it; errors go beside the fields."""
    resolve = field_resolver(form, NEED_ALIASES)
    try:
        checked = MatchRequestSchema().load(body)
        ranking = matching.match(index=match_index(), request=checked, actor=principal(),
                                 geocoder=geocoder(), default_weights=match_weights(),
                                 session=read_session())
        # The page shows what the API answers: the same schema shapes it.
        result = MatchResponseSchema().dump(ranking)
    except ValidationError as error:
        return None, attach_errors(error.messages, resolve)
    except ValidationFailed as error:
        return None, attach_errors(error.errors, resolve)
    return result, []


@blp.app_template_global()
def nav_items() -> list[tuple[str, str]]:
    """Return the (endpoint, label) links of the signed-in user's menu."""
    current = g.get("principal")
    if current is None:
        return []
    items = [("portal.dashboard", _l("Dashboard")), ("portal.referral_list", _l("Referrals")),
             ("portal.refer", _l("Refer a client"))]
    if current.is_staff:
        items += [("portal.organization_list", _l("Organizations")),
                  ("portal.match", _l("Match")), ("portal.skill_list", _l("Skills")),
                  ("portal.kpi_month", _l("KPI")),
                  ("portal.sign_in_list", _l("Sign-ins"))]
    else:
        items.append(("portal.profile", _l("Our profile")))
    return items + [("portal.visit_new", _l("Log a visit")), ("portal.lead_list", _l("Leads")),
                    ("portal.visit_list", _l("Visits")), ("portal.people_list", _l("People")),
                    ("portal.target_list", _l("Targets"))]


@blp.app_template_global()
@pass_context
def form_problems(context: Any) -> list[tuple[str, str]]:
    """Return (field id, "Label: message") for every error of every form the page was given,
    for the one summary at the top of every page (base.html)."""
    problems: list[tuple[str, str]] = []
    for value in context.get_all().values():
        forms = value.values() if isinstance(value, dict) else (value,)
        for form in forms:
            if isinstance(form, Form):
                problems += error_summary(form)
    return problems


@blp.app_template_filter()
def actor_label(actor: str | None) -> str:
    """Return who did something as a person reads it, from the actor stored with the change:
    "user:ann@firm.example" -> "ann@firm.example", "key:crm" -> "crm (API key)"."""
    kind, _sep, name = (actor or "").partition(":")
    if not name:
        return gettext("the service") if kind == "system" else kind
    return {"user": name, "key": gettext("%(name)s (API key)", name=name),
            "demo": gettext("%(name)s (demo data)", name=name)}.get(kind, actor or "")


@blp.context_processor
def layout_context() -> dict[str, Any]:
    """Give every page the sign-out form, the move labels, the error test and the month rule."""
    # formdata=None: the button reads nothing of the request, so that an error page (a 413
    # for a body over the limit) never reads the body that caused it.
    return {"logout_form": LogoutForm(formdata=None), "moves": MOVES, "has_errors": has_errors,
            "month_pattern": MONTH_PATTERN}
