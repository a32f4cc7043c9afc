"""The portal's pages: thin views that read a form, call a service and render a template."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as web_session
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import BadRequest, HTTPException

from referral_service import limits
from referral_service.db import read_session, write_session
from referral_service.errors import STATUS_BY_ERROR
from referral_service.extensions import match_index, match_weights
from referral_service.portal import charts
from referral_service.portal.forms import (
    MONTH_PATTERN,
    LoginForm,
    LogoutForm,
    MatchForm,
    MoveForm,
    NewTargetForm,
    OrganizationFilterForm,
    ProfileForm,
    ReferForm,
    ReferralFilterForm,
    TargetsForm,
    attach_errors,
    csrf,
    field_resolver,
    flatten_errors,
    has_errors,
    split_skills,
)
from referral_service.schemas.matching import MatchRequestSchema, MatchResponseSchema
from referral_service.schemas.organizations import OrganizationPatchSchema
from referral_service.services import auth, kpi, matching, organizations, referrals
from referral_service.services.auth import Principal
from referral_service.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ServiceError,
    ValidationFailed,
)

log = logging.getLogger(__name__)

blp = Blueprint("portal", __name__, template_folder="templates", static_folder="static",
                static_url_path="/portal/static")

MAX_ID = 2**31 - 1
PAGE_SIZE = 20
MAX_PAGE = 100_000
HISTORY_MONTHS = 6
# How a lifecycle move reads on a button, and in the message after it.
MOVES = {
    "accepted": ("Accept", "accepted"),
    "declined": ("Decline", "declined"),
    "converted": ("Mark won: the client signed", "marked won"),
    "lost": ("Mark lost", "marked lost"),
    "withdrawn": ("Withdraw", "withdrawn"),
}
REASON_REQUIRED = frozenset({"declined"})
REASON_OFFERED = frozenset({"declined", "lost", "withdrawn"})
OUTCOME_STATUSES = ("converted", "lost", "declined", "expired", "withdrawn")
EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


# --- the signed-in user ------------------------------------------------------------------


def principal() -> Principal:
    """Return who is signed in (views behind login_required only)."""
    return g.principal


def _stamp(password_hash: str) -> str:
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
    if user is None or web_session.get("stamp") != _stamp(user.password_hash) or not fresh:
        web_session.clear()
        flash("Your session has ended; please sign in again.", "info")
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


@blp.after_request
def security_headers(response: Response) -> Response:
    """Keep pages out of frames and caches, and let them load only the portal's own assets."""
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; script-src 'none'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "portal.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


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
        auth.require_staff(principal())
        return view(**kwargs)

    return login_required(wrapped)


@blp.app_template_global()
def nav_items() -> list[tuple[str, str]]:
    """Return the (endpoint, label) links of the signed-in user's menu."""
    current = g.get("principal")
    if current is None:
        return []
    items = [("portal.dashboard", "Dashboard"), ("portal.referral_list", "Referrals"),
             ("portal.refer", "Refer a client")]
    if current.is_staff:
        items += [("portal.organization_list", "Organizations"), ("portal.match", "Match"),
                  ("portal.kpi_month", "KPI")]
    else:
        items.append(("portal.profile", "Our profile"))
    return items


@blp.context_processor
def layout_context() -> dict[str, Any]:
    """Give every page the sign-out form, the move labels and the error test."""
    return {"logout_form": LogoutForm(), "moves": MOVES, "has_errors": has_errors}


# --- errors -------------------------------------------------------------------------------

ERROR_MESSAGES = {
    400: "The request could not be understood.",
    403: "You are signed in, but this page is not yours to see or change.",
    404: "There is nothing here, or it is not yours to see.",
    409: "Someone changed this at the same moment; reload the page and try again.",
    429: "Too many attempts; wait a moment and try again.",
    500: "Something went wrong on our side. It has been logged; please try again.",
    503: "The service is briefly unavailable; please try again in a moment.",
}


def wants_html() -> bool:
    """Return whether the client asked for a web page rather than JSON."""
    accept = request.accept_mimetypes
    return accept.best_match(["application/json", "text/html"]) == "text/html"


def render_error(status: int, message: str | None = None, *, title: str | None = None):
    """Render the portal's HTML error page."""
    return render_template("portal/error.html", status=status, title=title,
                           message=message or ERROR_MESSAGES.get(status, "")), status


@blp.errorhandler(HTTPException)
def handle_http_error(error: HTTPException):
    """An HTTP error inside the portal: an HTML page, not problem+json."""
    status = error.code or 500
    if status == 400 and "CSRF" in (error.description or ""):
        return render_error(400, "This form has expired or did not come from this site. "
                                 "Go back, reload the page and send it again.",
                            title="Form expired")
    page = render_error(status, ERROR_MESSAGES.get(status) if status != 429
                        else error.description)
    retry_after = getattr(error, "retry_after", None)
    if status == 429 and retry_after:
        return page[0], status, {"Retry-After": str(retry_after)}
    return page


@blp.errorhandler(ServiceError)
def handle_service_error(error: ServiceError):
    """A refused or missing object, as an HTML page with the service's status."""
    status = next((code for cls, code in STATUS_BY_ERROR.items() if isinstance(error, cls)), 400)
    message = ERROR_MESSAGES.get(404) if status == 404 else error.detail
    return render_error(status, message)


@blp.errorhandler(StaleDataError)
def handle_stale(_error: StaleDataError):
    """Two saves raced; the second is told to reload."""
    return render_error(409)


@blp.errorhandler(Exception)
def handle_unexpected(error: Exception):
    """Log the trace; show the user a plain page without it."""
    if isinstance(error, DBAPIError) and (isinstance(error, OperationalError)
                                          or error.connection_invalidated):
        log.warning("database unavailable: %s", type(error.orig).__name__)
        return render_error(503)
    log.exception("unhandled error in the portal")
    return render_error(500)


# --- small helpers ------------------------------------------------------------------------


def geocoder():
    """Return the app's geocoder."""
    return current_app.extensions["geocoder"]


def this_month() -> str:
    """Return the current month in UTC as YYYY-MM."""
    return datetime.now(UTC).strftime("%Y-%m")


def shift_month(month: str, delta: int) -> str:
    """Return the month `delta` months after `month` (YYYY-MM)."""
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def valid_month(value: str | None) -> bool:
    """Return whether `value` is a YYYY-MM month."""
    return bool(value) and re.match(MONTH_PATTERN, value) is not None


def month_or_404(value: str | None) -> str:
    """Return `value` if it is a YYYY-MM month; a page for no month is a 404."""
    if not valid_month(value):
        raise NotFound("Not a month.")
    return value


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


def safe_next(target: str | None) -> str | None:
    """Return `target` if it is a path on this site (never another host), else None."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def find_organization(text: str, actor: Principal) -> tuple[int | None, str | None]:
    """Resolve a firm typed by id or by (part of) its name; return (id, error message)."""
    text = text.strip().lstrip("#")
    if text.isdigit() and 1 <= int(text) <= MAX_ID:
        try:
            organizations.get(session=read_session(), organization_id=int(text), actor=actor)
        except NotFound:
            return None, f"No firm has id {text}."
        return int(text), None
    found, total = organizations.list_(session=read_session(), actor=actor, page=1,
                                       page_size=10, q=text)
    exact = [o for o in found if o.name.casefold() == text.casefold()]
    if len(exact) == 1 or total == 1:
        return (exact or found)[0].id, None
    if total == 0:
        return None, f"No firm's name contains {text!r}."
    return None, f"{total} firms match {text!r}; type more of the name, or the firm's id."


def rendered(template: str, *, status: int = 200, **context: Any):
    """Render a page with the status a form result calls for (422 when it has errors)."""
    return render_template(f"portal/{template}", **context), status


# --- sign in and out ----------------------------------------------------------------------


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
    found = auth.authenticate_user(session=read_session(), email=form.email.data,
                                   password=form.password.data)
    if found is None:
        form.password.errors = ["That e-mail and password do not match an active account."]
        return rendered("login.html", form=form, status=422)
    user = auth.get_user(session=read_session(), user_id=found.user_id)
    # A new session on sign-in: nothing set before it (or planted by someone else) survives.
    web_session.clear()
    web_session.update(user_id=user.id, stamp=_stamp(user.password_hash),
                       signed_in_at=time.time())
    flash(f"Signed in as {user.email}.", "success")
    return redirect(safe_next(form.next.data) or url_for(".dashboard"))


@blp.post("/logout")
def logout():
    """Sign out."""
    web_session.clear()
    flash("You are signed out.", "success")
    return redirect(url_for(".login"))


# --- dashboard ----------------------------------------------------------------------------


@blp.get("/dashboard")
@login_required
def dashboard():
    """Referrals waiting, recent outcomes and this month's KPI."""
    actor = principal()
    own = actor.organization_id
    scope = {"organization_id": own, "role": "receiver"} if own else {}
    waiting, waiting_total = referrals.list_(session=read_session(), actor=actor, page=1,
                                             page_size=10, status="pending", **scope)
    in_progress, in_progress_total = referrals.list_(
        session=read_session(), actor=actor, page=1, page_size=10, status="accepted", **scope)
    outcomes = recent_outcomes(actor)
    month = this_month()
    rows = kpi.monthly_kpi(session=read_session(), month=month, actor=actor,
                           organization_id=own)
    organization = (organizations.get(session=read_session(), organization_id=own, actor=actor)
                    if own else None)
    return rendered(
        "dashboard.html", organization=organization, waiting=waiting,
        waiting_total=waiting_total, in_progress=in_progress,
        in_progress_total=in_progress_total, outcomes=outcomes,
        names=names_for([*waiting, *in_progress, *outcomes]), month=month,
        summary=kpi_summary(rows), rows=rows,
    )


def recent_outcomes(actor: Principal, count: int = 8) -> list[Any]:
    """Return the latest closed referrals the caller is party to, newest first."""
    found: list[Any] = []
    for status in OUTCOME_STATUSES:
        items, _total = referrals.list_(session=read_session(), actor=actor, page=1,
                                        page_size=count, status=status,
                                        organization_id=actor.organization_id)
        found.extend(items)
    found.sort(key=lambda r: (r.updated_at, r.id), reverse=True)
    return found[:count]


KPI_COUNTS = ("referrals_made", "referrals_received", "accepted_received", "converted_made",
              "converted_received", "new_client_credits")


def kpi_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up KPI rows (one row for a partner; the network for head office)."""
    summary: dict[str, Any] = {name: sum(row[name] or 0 for row in rows) for name in KPI_COUNTS}
    targets = [row["target"] for row in rows if row.get("target") is not None]
    summary["target"] = sum(targets) if targets else None
    summary["attainment"] = (summary["new_client_credits"] / summary["target"]
                             if summary["target"] else None)
    return summary


# --- referrals ----------------------------------------------------------------------------


@blp.get("/referrals")
@login_required
def referral_list():
    """The referrals the user may see, filtered and paged."""
    actor = principal()
    form = ReferralFilterForm(request.args)
    filters: dict[str, Any] = {}
    if form.validate():
        filters = {name: getattr(form, name).data for name in ("role", "status", "month")
                   if getattr(form, name).data}
    organization_id = actor.organization_id
    if actor.is_staff:
        organization_id = request.args.get("organization_id", type=int)
        if organization_id is not None and not 1 <= organization_id <= MAX_ID:
            organization_id = None
    if organization_id is None:
        filters.pop("role", None)
    page = page_number()
    items, total = referrals.list_(session=read_session(), actor=actor, page=page,
                                   page_size=PAGE_SIZE, organization_id=organization_id,
                                   **filters)
    firm = (organization_names({organization_id}).get(organization_id)
            if organization_id else None)
    return rendered("referrals.html", form=form, items=items, total=total, page=page,
                    page_size=PAGE_SIZE, names=names_for(items), firm=firm,
                    organization_id=organization_id,
                    status=422 if form.errors else 200)


def move_forms(referral: Any, actor: Principal) -> dict[str, MoveForm]:
    """Return one form per move the user may make on `referral`."""
    forms = {}
    for move in referrals.allowed_moves(referral, actor):
        if move in MOVES:
            forms[move] = MoveForm(prefix=move, formdata=None, version=referral.version)
    return forms


@blp.get(f"/referrals/<int(max={MAX_ID}):referral_id>")
@login_required
def referral_detail(referral_id: int):
    """One referral, its history and the moves the user may make."""
    return show_referral(referral_id)


def show_referral(referral_id: int, *, failed: tuple[str, MoveForm] | None = None):
    """Render a referral; `failed` is a submitted (move, form) to show with its errors."""
    actor = principal()
    referral = referrals.get(session=read_session(), referral_id=referral_id, actor=actor)
    forms = move_forms(referral, actor)
    if failed is not None and failed[0] in forms:
        forms[failed[0]] = failed[1]
    return rendered("referral.html", referral=referral, forms=forms,
                    names=names_for([referral]), reason_required=REASON_REQUIRED,
                    reason_offered=REASON_OFFERED, status=422 if failed else 200)


@blp.post(f"/referrals/<int(max={MAX_ID}):referral_id>/status/<move>")
@login_required
def move_referral(referral_id: int, move: str):
    """Make one lifecycle move: accept, decline (with a reason), won, lost, withdraw."""
    if move not in MOVES:
        raise NotFound(f"{move} is not a referral status.")
    form = MoveForm(prefix=move)
    valid = form.validate()
    reason = (form.reason.data or "").strip()
    if move in REASON_REQUIRED and not reason:
        form.reason.errors = [*form.reason.errors, "Say why you decline it."]
        valid = False
    if not valid:
        return show_referral(referral_id, failed=(move, form))
    version = form.version.data
    try:
        referrals.move_referral(
            session=write_session(), referral_id=referral_id, status=move, reason=reason or None,
            actor=principal(),
            expected_version=int(version) if version and version.isdigit() else None,
        )
    except PreconditionFailed:
        flash("Someone else changed this referral while you were looking at it; "
              "here it is as it is now.", "error")
    except (Conflict, Forbidden) as error:
        flash(error.detail, "error")
    except ValidationFailed as error:
        for message in attach_errors(error.errors, field_resolver(form)):
            form.reason.errors = [*form.reason.errors, message]
        return show_referral(referral_id, failed=(move, form))
    else:
        flash(f"Referral #{referral_id} {MOVES[move][1]}.", "success")
    return redirect(url_for(".referral_detail", referral_id=referral_id))


# --- refer a client -----------------------------------------------------------------------


def need_request(form: Any, **extra: Any) -> dict[str, Any]:
    """Return the match request of a need form, before the shared schema checks it."""
    body: dict[str, Any] = {
        "skills": split_skills(form.skills.data),
        "description": (form.description.data or "").strip(),
        "location": form.location(),
        **extra,
    }
    return {key: value for key, value in body.items() if value is not None}


NEED_ALIASES = {"location": "city", "client": "client_name", "name": "client_name",
                "external_ref": "client_ref", "receiver_organization_id": "receiver",
                "referrer_organization_id": "referrer"}


def run_match(form: Any, body: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """Check a match request with the API's schema and run it; errors go beside the fields."""
    resolve = field_resolver(form, NEED_ALIASES)
    try:
        checked = MatchRequestSchema().load(body)
        ranking = matching.match(index=match_index(), request=checked, actor=principal(),
                                 geocoder=geocoder(), default_weights=match_weights())
        # The page shows what the API answers: the same schema shapes it.
        result = MatchResponseSchema().dump(ranking)
    except ValidationError as error:
        return None, attach_errors(error.messages, resolve)
    except ValidationFailed as error:
        return None, attach_errors(error.errors, resolve)
    return result, []


@blp.route("/refer", methods=["GET", "POST"])
@login_required
def refer():
    """Refer a client: describe the need, pick a receiver from the ranked list, record it."""
    actor = principal()
    form = ReferForm()
    result, general = None, []
    if not form.is_submitted() or not form.validate():
        return rendered("refer.html", form=form, result=None, general=general,
                        status=422 if form.errors else 200)
    referrer_id = actor.organization_id
    if actor.is_staff:
        referrer_id, problem = (find_organization(form.referrer.data, actor) if form.referrer.data
                                else (None, "Say which firm refers the client."))
        if problem:
            form.referrer.errors = [problem]
            return rendered("refer.html", form=form, result=None, general=general, status=422)
    result, general = run_match(form, need_request(form, limit=10,
                                                   referrer_organization_id=referrer_id))
    if result is None or not form.record.data:
        return rendered("refer.html", form=form, result=result, general=general,
                        status=422 if result is None else 200)
    chosen = next((c for c in result["candidates"]
                   if c["organization_id"] == form.receiver.data), None)
    if chosen is None:
        form.receiver.errors = ["Pick one of the firms listed below."]
        return rendered("refer.html", form=form, result=result, general=general, status=422)
    client: dict[str, Any] = {"name": form.client_name.data, "location": form.location()}
    if form.client_ref.data:
        client["external_ref"] = form.client_ref.data
    data = {
        "referrer_organization_id": referrer_id,
        "receiver_organization_id": chosen["organization_id"],
        "client": client,
        "skills": split_skills(form.skills.data),
        "description": (form.description.data or "").strip(),
        "note": (form.note.data or "").strip(),
        "match_score": chosen["score"],
    }
    try:
        referral = referrals.record_referral(
            session=write_session(), data=data, actor=actor, geocoder=geocoder(),
            attribution_window_days=current_app.config["ATTRIBUTION_WINDOW_DAYS"])
    except Conflict as error:
        existing = error.extra.get("existing_referral_id")
        general = [error.detail + (f" (referral #{existing})" if existing else "")]
        return rendered("refer.html", form=form, result=result, general=general,
                        existing=existing, status=409)
    except (ValidationFailed, Forbidden) as error:
        errors = error.errors if isinstance(error, ValidationFailed) else [error.detail]
        general = attach_errors(errors, field_resolver(form, NEED_ALIASES))
        return rendered("refer.html", form=form, result=result, general=general, status=422)
    flash(f"{form.client_name.data} was referred to {chosen['name']} (referral #{referral.id}).",
          "success")
    return redirect(url_for(".referral_detail", referral_id=referral.id))


# --- organizations and profiles -----------------------------------------------------------


@blp.get("/profile")
@login_required
def profile():
    """A partner's own profile; head office goes to the organizations list."""
    actor = principal()
    if actor.organization_id is None:
        return redirect(url_for(".organization_list"))
    return redirect(url_for(".organization", organization_id=actor.organization_id))


@blp.get("/organizations")
@staff_required
def organization_list():
    """Every firm, searchable and filtered, paged."""
    form = OrganizationFilterForm(request.args)
    filters: dict[str, Any] = {}
    if form.validate():
        filters = {name: getattr(form, name).data for name in ("q", "kind", "skill")
                   if getattr(form, name).data}
        if form.active.data:
            filters["active"] = form.active.data == "true"
    page = page_number()
    items, total = organizations.list_(session=read_session(), actor=principal(), page=page,
                                       page_size=PAGE_SIZE, **filters)
    return rendered("organizations.html", form=form, items=items, total=total, page=page,
                    page_size=PAGE_SIZE, status=422 if form.errors else 200)


def profile_form_data(organization: Any) -> dict[str, Any]:
    """Return the profile form's initial values, with one blank row for a new office."""
    offices = [{field: getattr(office, field) for field in
                ("id", *organizations.OFFICE_FIELDS)} for office in organization.offices]
    return {
        "version": organization.version, "name": organization.name,
        "description": organization.description, "skills": ", ".join(organization.skills),
        "capacity": organization.capacity, "kind": organization.kind,
        "group": organization.group, "active": organization.active,
        "offices": [*offices, {}],
    }


PLACE_FIELDS = ("city", "country", "address")


def profile_input(
    form: ProfileForm, actor: Principal, organization: Any
) -> tuple[dict[str, Any], list[int]]:
    """Return the profile update and, per office sent, its row in the form."""
    stored = {office.id: office for office in organization.offices}
    offices, rows = [], []
    for row, entry in enumerate(form.offices.entries):
        office = entry.form
        if office.remove.data or office.is_blank():
            continue
        data = {name: getattr(office, name).data for name in organizations.OFFICE_FIELDS}
        data = {key: (None if value == "" else value) for key, value in data.items()}
        if data["service_radius_km"] is None:
            data["service_radius_km"] = 100.0
        if office.id.data and office.id.data.isdigit():
            data["id"] = int(office.id.data)
        before = stored.get(data.get("id"))
        if before is not None and _moved_by_name_only(before, data):
            # A new city or address with the old coordinates left in the form: place it anew.
            data["latitude"] = data["longitude"] = None
        offices.append(data)
        rows.append(row)
    body: dict[str, Any] = {
        "name": form.name.data,
        "description": form.description.data or "",
        "skills": split_skills(form.skills.data),
        "capacity": form.capacity.data,
        "offices": offices,
    }
    if actor.is_staff:
        body.update(kind=form.kind.data, group=form.group.data or None,
                    active=bool(form.active.data))
    return body, rows


def _moved_by_name_only(before: Any, data: dict[str, Any]) -> bool:
    renamed = any((getattr(before, name) or "").casefold() != (data[name] or "").casefold()
                  for name in PLACE_FIELDS)
    same_point = (data["latitude"], data["longitude"]) == (before.latitude, before.longitude)
    return renamed and same_point


def office_resolver(form: ProfileForm, rows: list[int]):
    """Resolve an error path such as ('offices', '0', 'city') to the office row's field."""
    top = field_resolver(form)

    def resolve(path: tuple[str, ...]):
        if len(path) >= 3 and path[0] == "offices" and path[1].isdigit():
            index = int(path[1])
            if index < len(rows):
                office = form.offices.entries[rows[index]].form
                return office._fields.get(path[2])
        if path and path[0] == "offices":
            return None
        return top(path)

    return resolve


@blp.route(f"/organizations/<int(max={MAX_ID}):organization_id>", methods=["GET", "POST"])
@login_required
def organization(organization_id: int):
    """A firm's profile, editable by head office and by the firm's own staff."""
    actor = principal()
    submitted = request.method == "POST"
    session = write_session() if submitted else read_session()
    organization = organizations.get(session=session, organization_id=organization_id,
                                     actor=actor)
    form = ProfileForm() if submitted else ProfileForm(data=profile_form_data(organization))
    if not actor.is_staff:
        for name in ("kind", "group", "active"):
            delattr(form, name)
    general: list[str] = []
    if submitted and form.add_office.data:
        form.offices.append_entry()
        return profile_page(organization, form, general)
    if submitted and form.validate():
        body, rows = profile_input(form, actor, organization)
        resolve = office_resolver(form, rows)
        try:
            checked = OrganizationPatchSchema().load(body)
            organizations.update(
                session=write_session(), organization_id=organization_id, data=checked,
                actor=actor, geocoder=geocoder(),
                expected_version=int(form.version.data) if form.version.data.isdigit() else None,
            )
        except ValidationError as error:
            general = attach_errors(error.messages, resolve)
        except ValidationFailed as error:
            general = attach_errors(error.errors, resolve)
        except PreconditionFailed:
            organization = organizations.get(session=write_session(),
                                             organization_id=organization_id, actor=actor)
            # Saving again now overwrites the other change on purpose.
            form.version.data = str(organization.version)
            general = ["Someone saved this profile after you opened it. Your changes are "
                       "still below: save again to keep them, or reload to see theirs."]
        except (Conflict, Forbidden) as error:
            general = [error.detail]
        else:
            flash("Profile saved.", "success")
            return redirect(url_for(".organization", organization_id=organization_id))
    return profile_page(organization, form, general)


def profile_page(organization: Any, form: ProfileForm, general: list[str]):
    """Render the profile form, with 422 when it carries errors."""
    failed = bool(general) or has_errors(form)
    return rendered("organization.html", organization=organization, form=form,
                    general=general, status=422 if failed else 200)


# --- head office: match and KPI -----------------------------------------------------------


@blp.route("/match", methods=["GET", "POST"])
@staff_required
def match():
    """Rank firms for a need by hand."""
    form = MatchForm()
    result, general = None, []
    if form.validate_on_submit():
        body = need_request(form, limit=form.limit.data or 10,
                            max_distance_km=form.max_distance_km.data,
                            kinds=form.kinds.data or None)
        result, general = run_match(form, body)
    failed = form.is_submitted() and (result is None)
    return rendered("match.html", form=form, result=result, general=general,
                    status=422 if failed else 200)


def month_arg() -> str | None:
    """Return ?month= if it is a month, the current month if absent, else None."""
    month = request.args.get("month") or this_month()
    return month if valid_month(month) else None


@blp.get("/kpi")
@staff_required
def kpi_month():
    """The KPI month view: one row per firm, editable targets, chart and downloads."""
    month = month_arg()
    if month is None:
        flash("Give the month as YYYY-MM; here is the current one.", "error")
        return redirect(url_for(".kpi_month"))
    return kpi_page(month)


def kpi_page(month: str, *, targets_form: TargetsForm | None = None,
             new_form: NewTargetForm | None = None, status: int = 200):
    """Render one page of the month's KPI rows with the targets form."""
    rows = kpi.monthly_kpi(session=read_session(), month=month, actor=principal())
    page = page_number()
    shown = rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    if targets_form is None:
        targets_form = TargetsForm(formdata=None, month=month, targets=[
            {"organization_id": row["organization_id"], "new_clients": row["target"]}
            for row in shown])
    new_form = new_form or NewTargetForm(formdata=None, month=month)
    inputs = {str(entry.form.organization_id.data): entry.form
              for entry in targets_form.targets.entries}
    return rendered("kpi.html", month=month, rows=shown, total=len(rows), page=page,
                    page_size=PAGE_SIZE, summary=kpi_summary(rows), targets_form=targets_form,
                    target_inputs=inputs, new_form=new_form,
                    previous=shift_month(month, -1), next=shift_month(month, 1),
                    status=status)


@blp.post("/kpi/targets")
@staff_required
def save_targets():
    """Save the targets typed in the KPI table (only those that changed)."""
    form = TargetsForm()
    month = month_or_404(form.month.data)
    if not form.validate():
        return kpi_page(month, targets_form=form, status=422)
    current = {row["organization_id"]: row["target"] for row in
               kpi.monthly_kpi(session=write_session(), month=month, actor=principal())}
    changed = 0
    for entry in form.targets.entries:
        raw_id = entry.form.organization_id.data or ""
        organization_id = int(raw_id) if raw_id.isdigit() else None
        value = entry.form.new_clients.data
        if value is None or organization_id not in current or current[organization_id] == value:
            continue
        try:
            kpi.set_target(session=write_session(), organization_id=organization_id,
                           month=month, new_clients=value, actor=principal())
        except ValidationFailed as error:
            entry.form.new_clients.errors = [m for _p, m in flatten_errors(error.errors)]
            return kpi_page(month, targets_form=form, status=422)
        changed += 1
    flash(f"{changed} target{'s' if changed != 1 else ''} saved for {month}." if changed
          else "No target changed.", "success" if changed else "info")
    return redirect(url_for(".kpi_month", month=month, page=request.args.get("page")))


@blp.post("/kpi/targets/new")
@staff_required
def add_target():
    """Set a target for a firm picked by name or id."""
    form = NewTargetForm()
    month = month_or_404(form.month.data)
    if not form.validate():
        return kpi_page(month, new_form=form, status=422)
    organization_id, problem = find_organization(form.organization.data, principal())
    if problem:
        form.organization.errors = [problem]
        return kpi_page(month, new_form=form, status=422)
    try:
        kpi.set_target(session=write_session(), organization_id=organization_id, month=month,
                       new_clients=form.new_clients.data, actor=principal())
    except ValidationFailed as error:
        form.new_clients.errors = [m for _p, m in flatten_errors(error.errors)]
        return kpi_page(month, new_form=form, status=422)
    name = organization_names({organization_id}).get(organization_id, f"#{organization_id}")
    flash(f"Target for {name} in {month} set to {form.new_clients.data}.", "success")
    return redirect(url_for(".kpi_month", month=month))


@blp.get("/kpi/export")
@staff_required
def kpi_export():
    """Download the month's KPI rows as CSV or XLSX."""
    month, fmt = month_arg(), request.args.get("format", "csv")
    if month is None or fmt not in EXPORT_TYPES:
        raise NotFound("Unknown month or format.")
    rows = kpi.monthly_kpi(session=read_session(), month=month, actor=principal())
    body = kpi.export(rows, fmt, month)
    return Response(body, content_type=EXPORT_TYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="kpi-{month}.{fmt}"'})


@blp.get("/kpi/chart.png")
@staff_required
def kpi_chart():
    """The month's new-client credits against targets, as a PNG bar chart."""
    month = month_arg()
    if month is None:
        raise NotFound("Not a month.")
    rows = kpi.monthly_kpi(session=read_session(), month=month, actor=principal())
    return png(charts.month_chart(rows, month, compact=request.args.get("size") == "small"))


@blp.get("/kpi/history.png")
@login_required
def kpi_history_chart():
    """A firm's credits and targets over the last months (a partner: its own firm)."""
    actor = principal()
    organization_id = actor.organization_id or request.args.get("organization_id", type=int)
    last = this_month()
    months = [shift_month(last, -offset) for offset in range(HISTORY_MONTHS - 1, -1, -1)]
    points = []
    for month in months:
        rows = kpi.monthly_kpi(session=read_session(), month=month, actor=actor,
                               organization_id=organization_id)
        summary = kpi_summary(rows)
        points.append((month, summary["new_client_credits"], summary["target"]))
    # Months before the firm's first credit or target say nothing; keep at least three.
    while len(points) > 3 and not points[0][1] and points[0][2] is None:
        points.pop(0)
    return png(charts.history_chart(points, compact=request.args.get("size") == "small"))


def png(body: bytes) -> Response:
    """Return a chart; the browser may keep it for a minute."""
    response = Response(body, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
