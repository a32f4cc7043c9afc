"""The sales force's pages (SPEC section 9): log a visit, the visits of a team, my leads and
their moves (won, lost, referred on from the ranked match list)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC
from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask_babel import gettext, ngettext, to_user_timezone, to_utc
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from wtforms import Field, Form

from models import utcnow
from referral_service.db import read_session, write_session
from referral_service.extensions import geocoder, match_index, match_weights
from referral_service.portal.auth import login_required
from referral_service.portal.common import (
    PAGE_SIZE,
    blp,
    find_organization,
    organization_names,
    page_number,
    principal,
    rendered,
)
from referral_service.portal.forms import (
    MAX_LEAD_ROWS,
    WORDS,
    LeadFilterForm,
    LeadMoveForm,
    LeadReferForm,
    VisitFilterForm,
    VisitForm,
    attach_errors,
    flatten_errors,
    has_errors,
    said,
    split_skills,
)
from referral_service.schemas.base import MAX_ID
from referral_service.schemas.matching import MatchResponseSchema
from referral_service.schemas.visits import VisitCreateSchema
from referral_service.services import matching, people, visits
from referral_service.services.auth import Principal
from referral_service.services.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unavailable,
    ValidationFailed,
)

# How a lead's final move reads on its button and in the message after it.
LEAD_MOVES = {"won": (_l("Won: now our client"), _l("Lead %(name)s marked won.")),
              "lost": (_l("Lost"), _l("Lead %(name)s marked lost."))}
# The most people a salesperson picker lists (a manager's team, a firm for head office).
PEOPLE_CHOICES = 500
# Firms offered for a lead on its refer page.
REFER_CANDIDATES = 10
UNAVAILABLE = _l("The place could not be looked up just now, so nothing was saved. Everything "
                "you typed is still here: send it again in a moment.")


@blp.app_template_global()
def person_name(person_id: int | None) -> str | None:
    """Return the name of a person the signed-in user may see, else None."""
    if person_id is None:
        return None
    return person_names({person_id}).get(person_id)


@blp.app_template_global()
def visit_visible(visit_id: int | None) -> bool:
    """Return whether the signed-in user may open this visit."""
    if visit_id is None:
        return False
    try:
        visits.get_visit(session=read_session(), visit_id=visit_id, actor=principal())
    except NotFound:
        return False
    return True


def person_names(ids: Iterable[int]) -> dict[int, str]:
    """Return the names of the people in `ids` the signed-in user may see."""
    found = {}
    for person_id in set(ids):
        try:
            found[person_id] = people.get_person(session=read_session(), person_id=person_id,
                                                 actor=principal()).name
        except NotFound:
            continue
    return found


def salespeople(actor: Principal, organization_id: int | None) -> list[tuple[int, str]]:
    """Return (id, name) of the active people the user may report a visit for."""
    if organization_id is None:
        return []
    views, _ = people.list_people(session=read_session(), actor=actor, page=1,
                                  page_size=PEOPLE_CHOICES, organization_id=organization_id,
                                  active=True)
    scope = people.scope_of(session=read_session(), actor=actor)
    return [(view.person.id, view.person.name) for view in views
            if scope.covers(view.person.organization_id, view.person.id)]


def manages_others(actor: Principal) -> bool:
    """Return whether the user sees other people's work (a manager, a firm's user, staff)."""
    scope = people.scope_of(session=read_session(), actor=actor)
    return scope.person_ids is None or len(scope.person_ids) > 1


def chosen_organization(actor: Principal) -> tuple[int | None, str | None]:
    """Return the organization a page is about: the user's own, or head office's pick
    (?organization_id= or ?organization=name), with a message if the pick is unknown."""
    if not actor.is_staff:
        return actor.organization_id, None
    picked = request.args.get("organization_id", type=int)
    if picked is not None and 1 <= picked <= MAX_ID:
        return picked, None
    text = (request.args.get("organization") or "").strip()
    if not text:
        return None, None
    return find_organization(text, actor)


# --- log a visit --------------------------------------------------------------------------


@blp.route("/visits/new", methods=["GET", "POST"])
@login_required
def visit_new():
    """Log a visit: the client, what came back (a commitment, leads, or why nothing), notes."""
    actor = principal()
    organization_id, pick_problem = chosen_organization(actor)
    form = VisitForm()
    choices = salespeople(actor, organization_id)
    page = {"organization_id": organization_id, "pick_problem": pick_problem,
            "firm": organization_names({organization_id}).get(organization_id)
            if organization_id else None}
    if actor.is_staff and organization_id is None:
        return rendered("visit_new.html", form=None, general=[], **page)
    alone = actor.person_id is not None and [p for p, _ in choices] == [actor.person_id]
    if alone or not choices:
        del form.person_id
    else:
        form.person_id.choices = choices
    if not form.is_submitted():
        # The form speaks the user's time zone; the service stores UTC.
        form.visited_at.data = to_user_timezone(utcnow()).replace(
            tzinfo=None, second=0, microsecond=0)
        if actor.person_id is not None and form.person_id is not None:
            form.person_id.data = actor.person_id
        return visit_page(form, [], page)
    if form.add_lead.data:
        if len(form.leads.entries) < MAX_LEAD_ROWS:
            form.leads.append_entry()
        return visit_page(form, [], page, status=200)
    general: list[str] = []
    if not choices and actor.person_id is None:
        general = [gettext("Nobody here can file a visit report: add the salesperson on the "
                           "People page first.")]
    if not form.validate() or general:
        return visit_page(form, general, page)
    person_id = form.person_id.data if form.person_id is not None else actor.person_id
    body, rows = visit_input(form, person_id)
    resolve = visit_resolver(form, rows)
    status = 422
    try:
        data = VisitCreateSchema().load(body)
        recorded = visits.record_visit(
            session=write_session(), data=data, actor=actor, geocoder=geocoder(),
            attribution_window_days=current_app.config["ATTRIBUTION_WINDOW_DAYS"])
    except ValidationError as error:
        general = attach_errors(error.messages, resolve)
    except ValidationFailed as error:
        general = attach_errors(error.errors, resolve)
    except Conflict as error:
        general, status = [conflict_message(error)], 409
        held = error.extra.get("lead_index")  # the refused lead's place among those sent
        if held is not None and held < len(rows):
            row = form.leads.entries[rows[held]].form
            row.name.errors = [*row.name.errors,
                               gettext("Another firm already holds this client.")]
    except Unavailable:
        general, status = [str(UNAVAILABLE)], 503
    except Forbidden as error:
        general, status = [said(error.detail)], 403
    else:
        visit = recorded.visit
        client = visit.named_client.name
        flash(ngettext("Visit to %(client)s saved with %(num)s lead.",
                       "Visit to %(client)s saved with %(num)s leads.", len(visit.leads),
                       client=client) if visit.leads
              else gettext("Visit to %(client)s saved.", client=client), "success")
        return redirect(url_for(".visit_detail", visit_id=visit.id))
    return visit_page(form, general, page, status=status)


def conflict_message(error: Conflict) -> str:
    """Return a conflict's message, naming the referral that holds the client if any."""
    existing = error.extra.get("existing_referral_id")
    return said(error.detail) + (gettext(" (referral #%(id)s)", id=existing) if existing else "")


def visit_page(form: VisitForm, general: list[str], page: dict[str, Any], *,
               status: int | None = None):
    """Render the visit form (422 when it carries errors)."""
    failed = bool(general) or has_errors(form)
    return rendered("visit_new.html", form=form, general=general,
                    status=status or (422 if failed else 200), **page)


def visit_input(form: VisitForm, person_id: int | None) -> tuple[dict[str, Any], list[int]]:
    """Return the body of POST /visits the form holds and, per lead sent, its row."""
    client: dict[str, Any] = {"name": form.client_name.data}
    if form.client_ref.data:
        client["external_ref"] = form.client_ref.data
    place = typed_place(form.client_city.data, form.client_country.data)
    if place:
        client["location"] = place
    body: dict[str, Any] = {
        "person_id": person_id,
        "client": client,
        "visited_at": to_utc(form.visited_at.data).replace(tzinfo=UTC).isoformat(),
        "notes": form.notes.data or "",
    }
    commitment = {
        "description": (form.commitment_description.data or "").strip(),
        "amount": form.commitment_amount.data or None,
        "currency": (form.commitment_currency.data or "").upper() or None,
        "expected_on": (form.commitment_expected_on.data.isoformat()
                        if form.commitment_expected_on.data else None),
    }
    if any(commitment.values()):
        body["commitment"] = {key: value for key, value in commitment.items()
                              if value or key == "description"}
    leads, rows = [], []
    for row, entry in enumerate(form.leads.entries):
        lead = entry.form
        if lead.is_blank():
            continue
        item: dict[str, Any] = {
            "name": lead.name.data or "", "contact": lead.contact.data or "",
            "skills": split_skills(lead.skills.data),
            "description": (lead.description.data or "").strip(),
            "relationship": lead.relationship.data or "",
        }
        place = typed_place(lead.city.data, lead.country.data)
        if place:
            item["location"] = place
        leads.append(item)
        rows.append(row)
    body["leads"] = leads
    reason = (form.empty_handed_reason.data or "").strip()
    if reason:
        body["empty_handed_reason"] = reason
    if person_id is None:
        del body["person_id"]
    return body, rows


def typed_place(city: str | None, country: str | None) -> dict[str, Any] | None:
    """Return a place typed as city and country, or None if neither was typed."""
    place = {key: value for key, value in (("city", city), ("country", (country or "").upper()))
             if value}
    return place or None


# Where an error of the shared schema or the use case shows on the visit form.
CLIENT_FIELDS = {"name": "client_name", "external_ref": "client_ref"}
LEAD_FIELDS = ("name", "contact", "skills", "description", "relationship")


def visit_resolver(form: VisitForm, rows: list[int]) -> Callable[[tuple[str, ...]], Field | None]:
    """Resolve an error path such as ('leads', '1', 'location', 'city') to the form's field."""

    def place_field(owner: Form, prefix: str, rest: tuple[str, ...]) -> Field | None:
        name = "country" if rest[:1] == ("country",) else "city"
        return owner._fields.get(prefix + name)

    def resolve(path: tuple[str, ...]) -> Field | None:
        head, rest = (path[0], path[1:]) if path else ("", ())
        if head == "client":
            if rest[:1] == ("location",):
                return place_field(form, "client_", rest[1:])
            return form._fields.get(CLIENT_FIELDS.get(rest[0], "client_name") if rest
                                    else "client_name")
        if head == "commitment":
            name = rest[0] if rest and rest[0] != "_schema" else "description"
            return form._fields.get(f"commitment_{name}", form.commitment_description)
        if head == "leads" and rest and rest[0].isdigit() and int(rest[0]) < len(rows):
            lead = form.leads.entries[rows[int(rest[0])]].form
            if rest[1:2] == ("location",):
                return place_field(lead, "", rest[2:])
            return lead._fields.get(rest[1] if len(rest) > 1 and rest[1] in LEAD_FIELDS
                                    else "name")
        if head in ("person_id", "visited_at", "notes", "empty_handed_reason"):
            return form._fields.get(head)
        return None

    return resolve


# --- visits -------------------------------------------------------------------------------


@blp.get("/visits")
@login_required
def visit_list():
    """The visits of the user's people (a salesperson's own): empty-handed ones first."""
    actor = principal()
    organization_id, pick_problem = chosen_organization(actor)
    form = VisitFilterForm(request.args)
    team = salespeople(actor, organization_id) if organization_id else []
    form.person_id.choices = [("", "Everyone")] + [(str(pid), name) for pid, name in team]
    filters: dict[str, Any] = {}
    if form.validate():
        filters = {name: getattr(form, name).data for name in
                   ("person_id", "visited_from", "visited_to")
                   if getattr(form, name).data is not None}
    if organization_id is not None:
        filters["organization_id"] = organization_id
    page = page_number()
    items, total = visits.list_visits(session=read_session(), actor=actor, page=page,
                                      page_size=PAGE_SIZE, **filters)
    return rendered(
        "visits.html", form=form, items=items, total=total, page=page, page_size=PAGE_SIZE,
        names=person_names(v.person_id for v in items), organization_id=organization_id,
        pick_problem=pick_problem, show_people=manages_others(actor),
        firm=organization_names({organization_id}).get(organization_id)
        if organization_id else None,
        status=422 if form.errors or pick_problem else 200)


@blp.get(f"/visits/<int(max={MAX_ID}):visit_id>")
@login_required
def visit_detail(visit_id: int):
    """One visit report with its commitment and leads."""
    visit = visits.get_visit(session=read_session(), visit_id=visit_id, actor=principal())
    return rendered("visit.html", visit=visit, names=person_names({visit.person_id}),
                    firm=organization_names({visit.organization_id}).get(visit.organization_id))


# --- leads --------------------------------------------------------------------------------


@blp.get("/leads")
@login_required
def lead_list():
    """The user's leads (and their people's), by status."""
    actor = principal()
    form = LeadFilterForm(request.args)
    filters = {"status": form.status.data} if form.validate() and form.status.data else {}
    page = page_number()
    items, total = visits.list_leads(session=read_session(), actor=actor, page=page,
                                     page_size=PAGE_SIZE, **filters)
    names = person_names(lead.person_id for lead in items)
    return rendered("leads.html", form=form, items=items, total=total, page=page,
                    page_size=PAGE_SIZE, names=names, moves=LEAD_MOVES,
                    move_forms={move: LeadMoveForm(prefix=move, formdata=None)
                                for move in LEAD_MOVES},
                    show_people=manages_others(actor),
                    status=422 if form.errors else 200)


@blp.get(f"/leads/<int(max={MAX_ID}):lead_id>")
@login_required
def lead_detail(lead_id: int):
    """One lead: who, what they need, where, from which visit; its moves."""
    return lead_page(lead_id)


def lead_page(lead_id: int, *, move: str | None = None, form: LeadMoveForm | None = None,
              status: int = 200):
    """Render a lead; with `move`, the confirmation step of that move."""
    lead = visits.get_lead(session=read_session(), lead_id=lead_id, actor=principal())
    forms = {name: LeadMoveForm(prefix=name, formdata=None) for name in LEAD_MOVES}
    if move is not None and form is not None:
        forms[move] = form
    return rendered("lead.html", lead=lead, forms=forms, confirming=move, moves=LEAD_MOVES,
                    names=person_names({lead.person_id}), status=status)


@blp.post(f"/leads/<int(max={MAX_ID}):lead_id>/status/<move>")
@login_required
def move_lead(lead_id: int, move: str):
    """Mark an open lead won or lost, once the user has confirmed it."""
    if move not in LEAD_MOVES:
        raise NotFound(f"{move} is not a lead status.")
    form = LeadMoveForm(prefix=move)
    if not form.validate() or not form.confirm.data:
        # First press (or a confirmation left unticked): ask before the final step.
        if form.is_submitted() and request.form.get(f"{move}-confirming"):
            form.confirm.errors = [*form.confirm.errors, gettext("Tick the box to confirm.")]
        return lead_page(lead_id, move=move, form=form,
                         status=422 if has_errors(form) else 200)
    try:
        lead = visits.move_lead(session=write_session(), lead_id=lead_id, status=move,
                                reason=(form.reason.data or "").strip() or None,
                                actor=principal())
    except Conflict as error:
        flash(said(error.detail), "error")
    else:
        flash(LEAD_MOVES[move][1] % {"name": lead.name}, "success")
    return redirect(url_for(".lead_detail", lead_id=lead_id))


@blp.route(f"/leads/<int(max={MAX_ID}):lead_id>/refer", methods=["GET", "POST"])
@login_required
def refer_lead(lead_id: int):
    """Refer a lead on: the firms that fit its need and place, ranked; pick one and send."""
    actor = principal()
    lead = visits.get_lead(session=read_session(), lead_id=lead_id, actor=actor)
    if lead.status != "open":
        flash(gettext("This lead is %(status)s: only an open lead is referred.",
                      status=WORDS.get(lead.status, lead.status)), "error")
        return redirect(url_for(".lead_detail", lead_id=lead_id))
    form = LeadReferForm()
    result, general = lead_candidates(lead, actor)
    if not form.is_submitted():
        return refer_page(lead, form, result, general)
    status = 422
    receiver = None
    if form.validate():
        receiver = chosen_receiver(form, result)
    if receiver is None or form.consent_missing(current_app.config["REQUIRE_CLIENT_CONSENT"]):
        return refer_page(lead, form, result, general, status=422)
    consent = form.consent(actor.name)
    try:
        recorded = visits.refer_lead(
            session=write_session(), lead_id=lead_id, actor=actor, index=match_index(),
            data={"receiver_organization_id": receiver, "note": (form.note.data or "").strip(),
                  **({"consent": consent} if consent else {})},
            geocoder=geocoder(), default_weights=match_weights(),
            attribution_window_days=current_app.config["ATTRIBUTION_WINDOW_DAYS"],
            auto_reoffer_default=current_app.config["AUTO_REOFFER"],
            require_consent=current_app.config["REQUIRE_CLIENT_CONSENT"])
    except Conflict as error:
        general, status = [conflict_message(error)], 409
    except (ValidationFailed, Forbidden) as error:
        messages = error.errors if isinstance(error, ValidationFailed) else [error.detail]
        general = [message for _, message in flatten_errors(messages)]
    except Unavailable:
        general, status = [str(UNAVAILABLE)], 503
    else:
        firm = organization_names({receiver}).get(receiver, f"#{receiver}")
        flash(gettext("%(client)s was referred to %(firm)s (referral #%(id)s).",
                      client=lead.name, firm=firm, id=recorded.id), "success")
        return redirect(url_for(".referral_detail", referral_id=recorded.id))
    return refer_page(lead, form, result, general, status=status)


def lead_candidates(lead: Any, actor: Principal) -> tuple[dict[str, Any] | None, list[str]]:
    """Return the ranked firms for the lead's need and place (as the API shows a match), or
    None with why there is no list."""
    if lead.location is None:
        return None, [gettext("This lead was recorded without a place, so there is no ranked "
                              "list: name the firm below.")]
    if not lead.skills and not (lead.description or "").strip():
        return None, [gettext("This lead has no skills or need to match on: name the firm "
                              "below.")]
    try:
        ranking = matching.match(
            index=match_index(), actor=actor, geocoder=geocoder(),
            default_weights=match_weights(),
            request={"location": {"latitude": lead.latitude, "longitude": lead.longitude},
                     "skills": list(lead.skills or ()), "description": lead.description,
                     "limit": REFER_CANDIDATES,
                     "referrer_organization_id": lead.organization_id})
    except (ValidationFailed, Unavailable) as error:
        return None, [said(error.detail)]
    return MatchResponseSchema().dump(ranking), []


def chosen_receiver(form: LeadReferForm, result: dict[str, Any] | None) -> int | None:
    """Return the firm picked from the list or named; put the reason beside the field if none."""
    if form.firm.data:
        found, problem = named_firm(form.firm.data)
        if problem:
            form.firm.errors = [*form.firm.errors, problem]
        return found
    listed = {c["organization_id"] for c in (result or {}).get("candidates", ())}
    if form.receiver.data in listed:
        return form.receiver.data
    if listed:
        form.receiver.errors = [gettext("Pick one of the firms listed, or name a firm.")]
    else:
        form.firm.errors = [*form.firm.errors, gettext("Name the firm to refer the lead to.")]
    return None


def named_firm(text: str) -> tuple[int | None, str | None]:
    """Resolve a firm named on the refer page: by id, or (head office) by name too.

    A partner searches no other firm's profile (organizations.list_ shows it its own only),
    so it names a firm off the list by its id.
    """
    actor = principal()
    if actor.is_staff:
        return find_organization(text, actor)
    number = text.strip().lstrip("#")
    if not number.isdigit() or not 1 <= int(number) <= MAX_ID:
        return None, gettext("Give the firm's id (its number), or pick a firm from the list.")
    if int(number) not in organization_names({int(number)}):
        return None, gettext("No firm has id %(id)s.", id=number)
    return int(number), None


def refer_page(lead: Any, form: LeadReferForm, result: dict[str, Any] | None,
               general: list[str], *, status: int = 200):
    """Render a lead's refer page."""
    return rendered("lead_refer.html", lead=lead, form=form, result=result, general=general,
                    status=status)
