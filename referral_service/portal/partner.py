"""A partner's pages (head office sees them too): dashboard, referrals and their moves,
refer a client, a firm's profile."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask_babel import gettext
from marshmallow import ValidationError

from referral_service.db import read_session, write_session
from referral_service.extensions import geocoder, reoffers
from referral_service.portal.auth import login_required, staff_required
from referral_service.portal.common import (
    FINAL_MOVES,
    MOVES,
    NEED_ALIASES,
    PAGE_SIZE,
    blp,
    find_organization,
    names_for,
    need_request,
    organization_names,
    page_number,
    principal,
    rendered,
    run_match,
)
from referral_service.portal.forms import (
    MoveForm,
    ProfileForm,
    ReferForm,
    ReferralFilterForm,
    attach_errors,
    field_resolver,
    has_errors,
    said,
    split_skills,
)
from referral_service.schemas.base import MAX_ID
from referral_service.schemas.organizations import (
    OrganizationCreateSchema,
    OrganizationPatchSchema,
)
from referral_service.services import client_sites, kpi, organizations, referrals
from referral_service.services import dashboard as figures
from referral_service.services.auth import Principal
from referral_service.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)

REASON_REQUIRED = frozenset({"declined"})
REASON_OFFERED = frozenset({"declined", "lost", "withdrawn"})
# Office fields naming a place: changing one without the coordinates places the office anew.
PLACE_FIELDS = ("city", "country", "address")


# --- dashboard ----------------------------------------------------------------------------


@blp.get("/dashboard")
@login_required
def dashboard():
    """Referrals waiting, recent outcomes and this month's KPI."""
    actor, session = principal(), read_session()
    own = actor.organization_id
    scope = {"organization_id": own, "role": "receiver"} if own else {}
    waiting, waiting_total = referrals.list_(session=session, actor=actor, page=1,
                                             page_size=10, status="pending", **scope)
    in_progress, in_progress_total = referrals.list_(
        session=session, actor=actor, page=1, page_size=10, status="accepted", **scope)
    outcomes = figures.recent_outcomes(session=session, actor=actor)
    month = figures.this_month()
    organization = (organizations.get(session=session, organization_id=own, actor=actor)
                    if own else None)
    return rendered(
        "dashboard.html", organization=organization, waiting=waiting,
        waiting_total=waiting_total, in_progress=in_progress,
        in_progress_total=in_progress_total, outcomes=outcomes,
        names=names_for([*waiting, *in_progress, *outcomes]), month=month,
        summary=figures.kpi_summary(session=session, month=month, actor=actor,
                                    organization_id=own),
        # A firm's corrections of closed months booked this month (head office: KPI page).
        corrections=(kpi.monthly_corrections(session=session, month=month, actor=actor,
                                             organization_id=own) if own else []),
    )


# --- referrals ----------------------------------------------------------------------------


@blp.get("/referrals")
@login_required
def referral_list():
    """The referrals the user may see, filtered and paged."""
    actor = principal()
    form = ReferralFilterForm(request.args)
    filters: dict[str, Any] = {}
    if form.validate():
        filters = {name: getattr(form, name).data
                   for name in ("role", "status", "month", "client", "sort")
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
                    sort=filters.get("sort", "-created_at"),
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


def show_referral(referral_id: int, *, failed: tuple[str, MoveForm] | None = None,
                  confirming: str | None = None):
    """Render a referral; `failed` is a submitted (move, form) to show with its errors, or,
    with `confirming`, to confirm (a final move's second step)."""
    actor = principal()
    referral = referrals.get(session=read_session(), referral_id=referral_id, actor=actor)
    forms = move_forms(referral, actor)
    if failed is not None and failed[0] in forms:
        forms[failed[0]] = failed[1]
    if confirming not in forms:
        confirming = None
    # Head office reversing a conversion (converted -> lost) must say why.
    reversal = {move for move in forms if referrals.reason_required(referral, move)}
    return rendered("referral.html", referral=referral, forms=forms, confirming=confirming,
                    names=names_for([referral]), reason_required=REASON_REQUIRED | reversal,
                    reversal=reversal, reason_offered=REASON_OFFERED,
                    status=422 if failed and has_errors(failed[1]) else 200)


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
        form.reason.errors = [*form.reason.errors, gettext("Say why you decline it.")]
        valid = False
    if not valid:
        return show_referral(referral_id, failed=(move, form))
    if move in FINAL_MOVES and not form.confirm.data:
        # The first press of a final move asks before it is made (what was typed is kept).
        if request.form.get(f"{move}-confirming"):
            form.confirm.errors = [*form.confirm.errors, gettext("Tick the box to confirm.")]
        return show_referral(referral_id, failed=(move, form), confirming=move)
    version = form.version.data
    try:
        referrals.move_referral(
            session=write_session(), referral_id=referral_id, status=move, reason=reason or None,
            actor=principal(),
            expected_version=int(version) if version and version.isdigit() else None,
            reoffers=reoffers(),
        )
    except PreconditionFailed:
        flash(gettext("Someone else changed this referral while you were looking at it; "
                      "here it is as it is now."), "error")
    except (Conflict, Forbidden) as error:
        flash(said(error.detail), "error")
    except ValidationFailed as error:
        for message in attach_errors(error.errors, field_resolver(form)):
            form.reason.errors = [*form.reason.errors, message]
        return show_referral(referral_id, failed=(move, form))
    else:
        flash(MOVES[move][1] % {"id": referral_id}, "success")
    return redirect(url_for(".referral_detail", referral_id=referral_id))


# --- refer a client -----------------------------------------------------------------------


def refer_again_data(referral_id: int, actor: Principal) -> dict[str, Any]:
    """The refer form filled from a referral that went nowhere ("Refer this client to another
    firm"): the client as named and placed, the need; nothing the caller may not see."""
    referral = referrals.get(session=read_session(), referral_id=referral_id, actor=actor)
    named = referral.named_client
    data: dict[str, Any] = {"skills": "\n".join(referral.skills or []),
                            "description": referral.description or ""}
    if not named.withheld:
        data.update(client_name=named.name, city=named.city, country=named.country,
                    address=named.address, latitude=named.latitude,
                    longitude=named.longitude)
    return data


@blp.route("/refer", methods=["GET", "POST"])
@login_required
def refer():
    """Refer a client: describe the need, pick a receiver from the ranked list, record it."""
    actor = principal()
    form = ReferForm()
    result, general = None, []
    onwards = request.args.get("from_referral", type=int)
    if not form.is_submitted() and onwards is not None and 1 <= onwards <= MAX_ID:
        form = ReferForm(formdata=None, data=refer_again_data(onwards, actor))
    if not form.is_submitted():
        form.auto_reoffer.data = current_app.config["AUTO_REOFFER"]
    if not form.is_submitted() or not form.validate():
        return rendered("refer.html", form=form, result=None, general=general,
                        status=422 if form.errors else 200)
    referrer_id = actor.organization_id
    if actor.is_staff:
        referrer_id, problem = (find_organization(form.referrer.data, actor) if form.referrer.data
                                else (None, gettext("Say which firm refers the client.")))
        if problem:
            form.referrer.errors = [problem]
            return rendered("refer.html", form=form, result=None, general=general, status=422)
    site_id = _offer_sites(form, referrer_id)
    asked = need_request(form, limit=10, referrer_organization_id=referrer_id,
                         **form.group_request())
    if site_id is not None:  # the site's place, not the place fields
        asked = {**{k: v for k, v in asked.items() if k != "location"}, "client_site_id": site_id}
    result, general = run_match(form, asked)
    if result is None or not form.record.data:
        return rendered("refer.html", form=form, result=result, general=general,
                        status=422 if result is None else 200)
    chosen = next((c for c in result["candidates"]
                   if c["organization_id"] == form.receiver.data), None)
    if chosen is None:
        form.receiver.errors = [gettext("Pick one of the firms listed below.")]
        return rendered("refer.html", form=form, result=result, general=general, status=422)
    if form.consent_missing(current_app.config["REQUIRE_CLIENT_CONSENT"]):
        return rendered("refer.html", form=form, result=result, general=general, status=422)
    client: dict[str, Any] = {"name": form.client_name.data, "location": form.location()}
    if form.client_ref.data:
        client["external_ref"] = form.client_ref.data
    if form.consent(actor.name):
        client["consent"] = form.consent(actor.name)
    data = {
        "referrer_organization_id": referrer_id,
        "receiver_organization_id": chosen["organization_id"],
        "client": client,
        "skills": split_skills(form.skills.data),
        "description": (form.description.data or "").strip(),
        "note": (form.note.data or "").strip(),
        "match_score": chosen["score"], "auto_reoffer": bool(form.auto_reoffer.data),
    }
    if site_id is not None:
        client.pop("location")
        data["client_site_id"] = site_id
    if form.new_site_label.data:
        if site_id is not None:
            form.new_site_label.errors = [gettext("Leave this empty to use the site picked "
                                                  "above, or pick “None” there.")]
            return rendered("refer.html", form=form, result=result, general=general,
                            status=422)
        data["new_client_site"] = {"label": form.new_site_label.data,
                                   "location": client.pop("location")}
    try:
        referral = referrals.record_referral(
            session=write_session(), data=data, actor=actor, geocoder=geocoder(),
            attribution_window_days=current_app.config["ATTRIBUTION_WINDOW_DAYS"],
            auto_reoffer_default=current_app.config["AUTO_REOFFER"],
            require_consent=current_app.config["REQUIRE_CLIENT_CONSENT"])
    except Conflict as error:
        existing = error.extra.get("existing_referral_id")
        general = [said(error.detail) + (gettext(" (referral #%(id)s)", id=existing)
                                         if existing else "")]
        return rendered("refer.html", form=form, result=result, general=general,
                        existing=existing, status=409)
    except (ValidationFailed, Forbidden) as error:
        errors = error.errors if isinstance(error, ValidationFailed) else [error.detail]
        general = attach_errors(errors, field_resolver(form, NEED_ALIASES))
        return rendered("refer.html", form=form, result=result, general=general, status=422)
    flash(gettext("%(client)s was referred to %(firm)s (referral #%(id)s).",
                  client=form.client_name.data, firm=chosen["name"], id=referral.id), "success")
    return redirect(url_for(".referral_detail", referral_id=referral.id))


def _offer_sites(form: ReferForm, referrer_id: int) -> int | None:
    """Offer the referrer's recorded sites of the named client, if any (SPEC section 8), and
    return the one picked, or None."""
    sites = client_sites.of_named_client(
        session=read_session(), name=form.client_name.data,
        external_ref=form.client_ref.data or None, organization_id=referrer_id)
    if not sites:
        return None
    form.client_site.choices = [(0, gettext("None: the place given above"))] + [
        (site.id, ", ".join(part for part in (site.label, site.city, site.country) if part))
        for site in sites]
    return form.client_site.data if form.client_site.data in {s.id for s in sites} else None


# --- a firm's profile ---------------------------------------------------------------------


@blp.get("/profile")
@login_required
def profile():
    """A partner's own profile; head office goes to the organizations list."""
    actor = principal()
    if actor.organization_id is None:
        return redirect(url_for(".organization_list"))
    return redirect(url_for(".organization", organization_id=actor.organization_id))


def profile_form_data(organization: Any) -> dict[str, Any]:
    """Return the profile form's initial values, with one blank row for a new office."""
    offices = [{field: getattr(office, field) for field in
                ("id", *organizations.OFFICE_FIELDS)} for office in organization.offices]
    return {
        "version": organization.version, "name": organization.name,
        "description": organization.description, "skills": ", ".join(organization.skills),
        "capacity": organization.capacity, "kind": organization.kind,
        "group": organization.group, "active": organization.active,
        **{f"contact_{part}": value for part, value in (organization.contact or {}).items()},
        "offices": [*offices, {}],
    }


def profile_input(
    form: ProfileForm, actor: Principal, organization: Any
) -> tuple[dict[str, Any], list[int]]:
    """Return the profile update (or a new firm's profile, for no `organization`) and, per
    office sent, its row in the form."""
    stored = {office.id: office for office in organization.offices} if organization else {}
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
        "contact": {part: getattr(form, f"contact_{part}").data or None
                    for part in ("name", "email", "phone")},
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
        if len(path) == 2 and path[0] == "contact":
            return form._fields.get(f"contact_{path[1]}")
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
                session=session, organization_id=organization_id, data=checked,
                actor=actor, geocoder=geocoder(),
                expected_version=int(form.version.data) if form.version.data.isdigit() else None,
            )
        except ValidationError as error:
            general = attach_errors(error.messages, resolve)
        except ValidationFailed as error:
            general = attach_errors(error.errors, resolve)
        except PreconditionFailed:
            organization = organizations.get(session=session,
                                             organization_id=organization_id, actor=actor)
            # Saving again now overwrites the other change on purpose.
            form.version.data = str(organization.version)
            general = [gettext("Someone saved this profile after you opened it. Your changes "
                               "are still below: save again to keep them, or reload to see "
                               "theirs.")]
        except (Conflict, Forbidden) as error:
            general = [said(error.detail)]
        else:
            flash(gettext("Profile saved."), "success")
            return redirect(url_for(".organization", organization_id=organization_id))
    return profile_page(organization, form, general)


@blp.get(f"/firms/<int(max={MAX_ID}):organization_id>")
@login_required
def firm(organization_id: int):
    """A firm's public profile, opened from a match list: what it offers and where."""
    organization = organizations.public_profile(
        session=read_session(), organization_id=organization_id, actor=principal())
    return rendered("firm.html", organization=organization)


@blp.route("/organizations/new", methods=["GET", "POST"])
@staff_required
def organization_new():
    """Head office adds a firm: the profile form, empty."""
    actor = principal()
    form = ProfileForm() if request.method == "POST" else ProfileForm(
        data={"kind": "partner", "active": True, "offices": [{}]})
    general: list[str] = []
    if request.method == "POST" and form.add_office.data:
        form.offices.append_entry()
        return profile_page(None, form, general)
    if request.method == "POST" and form.validate():
        body, rows = profile_input(form, actor, None)
        resolve = office_resolver(form, rows)
        try:
            created = organizations.create(
                session=write_session(), data=OrganizationCreateSchema().load(body),
                actor=actor, geocoder=geocoder())
        except ValidationError as error:
            general = attach_errors(error.messages, resolve)
        except ValidationFailed as error:
            general = attach_errors(error.errors, resolve)
        except Conflict as error:
            general = [said(error.detail)]
        else:
            flash(gettext("%(name)s added.", name=created.name), "success")
            return redirect(url_for(".organization", organization_id=created.id))
    return profile_page(None, form, general)


def profile_page(organization: Any, form: ProfileForm, general: list[str]):
    """Render the profile form, with 422 when it carries errors."""
    failed = bool(general) or has_errors(form)
    return rendered("organization.html", organization=organization, form=form,
                    general=general, status=422 if failed else 200)
